"""The Lua scripts of the Redis assignment store, one per ledger operation.

Every script takes two keys in one cluster hash slot: ``KEYS[1]``, the unit's hash, and
``KEYS[2]``, the marker of the unit's ledger shard. Its leading arguments are the run's field,
the time now, the unit's idle TTL in milliseconds, the calling store's token, which with the
server's time becomes the marker's value when the shard has no marker (so every marker ever
written is distinct, even one a store writes again after a loss), and the remaining TTL below
which the unit's TTL is refreshed. Every script returns the marker in force, and whether it
wrote to the unit's hash, as its last two values: a marker the caller did not expect means the
shard lost what it held (see ``redis_store``); a read that wrote nothing may be kept in the
caller's local cache (see ``_ledger_cache``), since no invalidation of its own will follow.

A unit's TTL (``PEXPIRE``) and the time it was last seen in a run (``s:<field>``) are written
when the TTL left is below ``ARGV[5]``: once per refresh interval, not on every call (each
write invalidates every instance's local copy of the unit). An entry is packed as
``assigned_at|flag_version|variation_id``.
"""

from __future__ import annotations

_MARKER = """
local marker = redis.call('GET', KEYS[2])
if not marker then
  local now = redis.call('TIME')
  marker = ARGV[4] .. ':' .. now[1] .. '.' .. now[2]
  redis.call('SET', KEYS[2], marker)
end
local function refresh()
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
    redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  return 0
end
"""

#: Returns {entry or false, marker, wrote}.
TOUCH = (
    _MARKER
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return {false, marker, 0} end
return {v, marker, refresh()}
"""
)

#: ARGV[6]: the packed new entry. Returns {created, entry in force, marker, wrote}.
CLAIM = (
    _MARKER
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[6], 's:' .. ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, ARGV[6], marker, 1}
end
return {0, v, marker, refresh()}
"""
)

#: ARGV[6]: the packed new entry; ARGV[7]: its variation id. Returns {previous or false,
#: marker, wrote}.
REPLACE = (
    _MARKER
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if (not v) or string.match(v, '^[^|]*|[^|]*|(.*)$') ~= ARGV[7] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[6], 's:' .. ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {v, marker, 1}
end
return {v, marker, refresh()}
"""
)
