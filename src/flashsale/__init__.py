"""flashsale: a flash-sale (秒杀) and promotion platform."""

__version__ = "0.1.0"
