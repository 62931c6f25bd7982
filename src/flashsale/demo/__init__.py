"""`flashsale demo`: a phone launch on the embedded platform, bought by a simulated, concurrent crowd."""

from flashsale.demo.crowd import CrowdTooSmall
from flashsale.demo.report import DEFINITIONS, DemoReport, ItemAudit
from flashsale.demo.run import DemoOptions, run_demo

__all__ = ["DEFINITIONS", "CrowdTooSmall", "DemoOptions", "DemoReport", "ItemAudit", "run_demo"]
