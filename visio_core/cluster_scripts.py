"""The Lua scripts of the cross-node placement (visio_core/cluster.py), each atomic in Redis.

Kept apart from the Python that calls them: each says which KEYS and ARGV it takes.
"""

# KEYS: node key, nodes set, placed set. ARGV: node JSON, ttl ms, name, room ttl ms,
# prefix, oldest placement still counted, then the rooms the node reports.
BEAT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
local taken = {}
for i = 7, #ARGV do
  local key = ARGV[5] .. 'room:' .. ARGV[i]
  local owner = redis.call('GET', key)
  if (not owner) or owner == ARGV[3] or redis.call('EXISTS', ARGV[5] .. 'node:' .. owner) == 0 then
    redis.call('SET', key, ARGV[3], 'PX', ARGV[4])
  else
    table.insert(taken, ARGV[i])
    table.insert(taken, owner)
  end
  redis.call('ZREM', KEYS[3], ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return taken
"""

# KEYS: room key, the chosen node's key, its placed set. ARGV: node key prefix, chosen
# name, room ttl ms, now, room id, then nodes whose entry is unreadable (they hold nothing).
# {owner, 0} if it lives, else {chosen, 1} once written if the chosen node still lives
# (false: choose again).
PLACE = """
local owner = redis.call('GET', KEYS[1])
if owner and redis.call('EXISTS', ARGV[1] .. owner) == 1 then
  local readable = true
  for i = 6, #ARGV do
    if ARGV[i] == owner then readable = false end
  end
  if readable then return {owner, 0} end
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  return false
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return {ARGV[2], 1}
"""

# KEYS: nodes set. ARGV: prefix, oldest placement counted. Name, JSON and recent
# placements of each live node, flat; names whose node key expired leave the set.
VIEW = """
local view = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local value = redis.call('GET', ARGV[1] .. 'node:' .. name)
  if value then
    table.insert(view, name)
    table.insert(view, value)
    table.insert(view, redis.call('ZCOUNT', ARGV[1] .. 'placed:' .. name, ARGV[2], '+inf'))
  else
    redis.call('SREM', KEYS[1], name)
  end
end
return view
"""

# KEYS: room key. ARGV: node key prefix. The hosting node's JSON, or nil.
WHERE = """
local owner = redis.call('GET', KEYS[1])
if not owner then
  return false
end
return redis.call('GET', ARGV[1] .. owner)
"""

# KEYS: room key, placed set. ARGV: name, room id. Only our own placement goes.
RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: node key, nodes set. ARGV: name, the beat seen. Only if it has not beaten since.
FORGET = """
local value = redis.call('GET', KEYS[1])
if not value then
  return 0
end
local ok, node = pcall(cjson.decode, value)
if ok and type(node) == 'table' and tonumber(node['beat']) and
   tonumber(node['beat']) > tonumber(ARGV[2]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""
