-- bench/redis/reserve.lua - the seed document's inventory reservation: an
-- atomic check-and-decrement of one item's stock in a Redis Lua script, which
-- then records the reservation. bench/redis/run loads it (SCRIPT LOAD) and
-- drives it with redis-benchmark as EVALSHA.
--
--   KEYS[1]  the item's lock key (declared by the seed, never used by its script)
--   KEYS[2]  the item's stock, an integer ("inventory:<item>")
--   ARGV[1]  quantity
--   ARGV[2]  expires_at, Unix seconds
--   ARGV[3]  the user
--
-- Line for line the seed's script, with one change: the seed's client passes
-- a fresh UUID as the reservation id, which redis-benchmark cannot make (its
-- __rand_int__ draws from the same small key space as the item), so the id
-- is taken from a counter inside the script, as arbiter's "r<seq>" is. The
-- seed's EXPIREAT names the reservation id, a key that does not exist (the
-- record is a field of the "reservations" hash): it does nothing, as in the
-- seed, and nothing ever gives expired units back.
local current = redis.call('GET', KEYS[2])
if not current or tonumber(current) < tonumber(ARGV[1]) then
    return {false, 'insufficient'}
end

local new_val = tonumber(current) - tonumber(ARGV[1])
redis.call('SET', KEYS[2], new_val)

local reservation_id = 'r' .. redis.call('INCR', 'reservations:seq')
local expires_at = ARGV[2]
redis.call('HSET', 'reservations', reservation_id, ARGV[3])
redis.call('EXPIREAT', reservation_id, expires_at)

return {true, reservation_id}
