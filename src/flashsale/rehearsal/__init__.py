"""Load rehearsals: a campaign's forecast traffic, at a multiple, against a running deployment.

`openloop` schedules arrivals and times every answer from its intended send time; `storefront`
is the shoppers' HTTP door (the demo's behaviours play through it); `operator` is the admin API
(forecast, the throwaway copy, the counters read afterwards); `run` puts them together.
"""
