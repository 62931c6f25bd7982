-- The earliest expires_at among live holds of all items, or nil when nothing is held.
return redis.call('ZRANGE', DUE, 0, 0, 'WITHSCORES')[2]
