"""The Lua scripts of the Redis assignment store, one per ledger operation.

Every script takes two keys in one cluster hash slot: ``KEYS[1]``, the unit's hash, and
``KEYS[2]``, the marker of the unit's ledger shard. Its leading arguments are the run's field,
the time now, the unit's idle TTL in milliseconds, and the calling store's token, which with
the server's time becomes the marker's value when the shard has no marker (so every marker ever
written is distinct, even one a store writes again after a loss). Every script returns the
marker in force as its last value: a marker the caller did not expect means the shard lost
what it held (see ``redis_store``). An entry is packed as
``assigned_at|flag_version|variation_id``, and ``s:<field>`` holds when the unit was last seen
in that run.
"""

from __future__ import annotations

_MARKER = """
local marker = redis.call('GET', KEYS[2])
if not marker then
  local now = redis.call('TIME')
  marker = ARGV[4] .. ':' .. now[1] .. '.' .. now[2]
  redis.call('SET', KEYS[2], marker)
end
"""

#: Returns {entry or false, marker}.
TOUCH = (
    _MARKER
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return {false, marker} end
redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {v, marker}
"""
)

#: ARGV[5]: the packed new entry. Returns {created, entry in force, marker}.
CLAIM = (
    _MARKER
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
local created = 0
if not v then
  v = ARGV[5]
  created = 1
  redis.call('HSET', KEYS[1], ARGV[1], v, 's:' .. ARGV[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {created, v, marker}
"""
)

#: ARGV[5]: the packed new entry; ARGV[6]: its variation id. Returns {previous or false, marker}.
REPLACE = (
    _MARKER
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if (not v) or string.match(v, '^[^|]*|[^|]*|(.*)$') ~= ARGV[6] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
end
redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {v, marker}
"""
)
