import RedisClient

/// The atomic steps on the shared books, as Lua scripts that Redis runs one at a time: so two
/// balancers can never hand out the same server, and a step half done never shows.
///
/// Keys, under the prefix `P` (passed as `KEYS[1]`):
/// - `P:free`: list of free servers, oldest first; `P:state`: hash server → `free`,
///   `leased:<token>`, `idle:<ms>` (its lease ended, not yet put back) or `out` (down or left);
/// - `P:withdrawn`: servers a balancer took out (down, or left the pool): not put back by a report;
/// - `P:waiting`: list of waiting clients, `balancer|ticket|token|client`, in the order they began
///   to wait; `P:grants:<balancer>`: servers handed to a balancer's waiting clients;
/// - `P:leases`: set of tokens; `P:lease:<token>`: hash of one lease (`server`, `client`,
///   `balancer`, `issued`, `deadline`, `cdl` (claim deadline, 0 for none), `claim`, `ext`,
///   `checking`, `csince`), times in Redis's milliseconds;
/// - `P:counts`: issued, reported, expired, reclaimed; `P:served`: leases per server;
/// - `P:lease_reporters`: servers that have reported with a lease: a report without one is not
///   theirs, whichever balancer it reaches;
/// - `P:stranded`: hash down server → the tokens of its leases that ended unreported when it
///   was found down, still to be revoked there, separated by spaces (empty once each is settled:
///   it then waits for a check that finds it idle); kept when the server leaves the pool, for
///   the entry that joins for the same process (`moveStranded`);
/// - `P:alive:<balancer>`: present while a balancer runs; `P:coordinator`: which balancer runs
///   the expiry and claim checks; `P:config`, `P:config:version`: the pool, as servers.json.
///
/// A lease comes back as `[token, server, client, balancer, issued, deadline, cdl, claim, ext]`,
/// and every answer carries Redis's time, so that its times can be read on this machine's clock.
enum SharedScripts {
  /// Shared by every script: time, and making and ending leases.
  private static let prelude = """
    local P = KEYS[1]
    local function now()
      local t = redis.call('TIME')
      return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    local function lease_key(token) return P .. ':lease:' .. token end
    -- Adds one to a counter; one that holds no number (a hand edit) starts again at 1 rather
    -- than failing the step that counts, which would fail every lease.
    local function count(key, field)
      local counted = redis.pcall('HINCRBY', key, field, 1)
      if type(counted) == 'table' and counted.err then redis.pcall('HSET', key, field, 1) end
    end
    local function fields(token)
      local f = redis.call('HMGET', lease_key(token), 'server', 'client', 'balancer', 'issued',
        'deadline', 'cdl', 'claim', 'ext')
      if not f[1] then return false end
      return {token, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]}
    end
    local function new_lease(token, server, client, balancer, lease_ms, claim_ms, t)
      local cdl = 0
      if tonumber(claim_ms) > 0 then cdl = t + tonumber(claim_ms) end
      redis.call('HSET', lease_key(token), 'server', server, 'client', client,
        'balancer', balancer, 'issued', t, 'deadline', t + tonumber(lease_ms), 'cdl', cdl,
        'claim', 'unclaimed', 'ext', 0, 'checking', 0, 'csince', 0)
      redis.call('SADD', P .. ':leases', token)
      redis.call('HSET', P .. ':state', server, 'leased:' .. token)
      count(P .. ':served', server)
      count(P .. ':counts', 'issued')
      return fields(token)
    end
    local function end_lease(token, reason, t)
      local f = fields(token)
      if not f then return false end
      redis.call('DEL', lease_key(token))
      redis.call('SREM', P .. ':leases', token)
      if redis.call('HGET', P .. ':state', f[2]) == 'leased:' .. token then
        redis.call('HSET', P .. ':state', f[2], 'idle:' .. t)
      end
      count(P .. ':counts', reason)
      return f
    end

    -- A server that holds no lease goes to the oldest client waiting at a running balancer,
    -- leased at once: to the calling balancer's {2, now, ticket, lease}, to another's through
    -- its grants list {1, now}; else it joins the free list {3, now}. Nothing happens to a
    -- server already free or leased {0, now}, except that a free one missing from the free
    -- list (a step cut short, a hand edit) is put back as any other.
    local function put_server(server, balancer, lease_ms, claim_ms, t)
      local st = redis.call('HGET', P .. ':state', server)
      if st == 'free' and redis.call('LPOS', P .. ':free', server) then return {0, t} end
      if st and string.sub(st, 1, 7) == 'leased:' then return {0, t} end
      while true do
        local e = redis.call('LPOP', P .. ':waiting')
        if not e then break end
        local b, ticket, token, client = string.match(e, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
        if b and redis.call('EXISTS', P .. ':alive:' .. b) == 1
          and redis.call('EXISTS', lease_key(token)) == 0 then
          local f = new_lease(token, server, client, b, lease_ms, claim_ms, t)
          if b == balancer then return {2, t, ticket, f} end
          local g = P .. ':grants:' .. b
          redis.call('RPUSH', g,
            table.concat({ticket, t, token, server, f[5], f[6], f[7], client}, '|'))
          redis.call('PEXPIRE', g, 60000)
          return {1, t}
        end
      end
      redis.call('RPUSH', P .. ':free', server)
      redis.call('HSET', P .. ':state', server, 'free')
      return {3, t}
    end

    """

  private static func script(_ body: String) -> RedisScript { RedisScript(prelude + body) }

  /// Every script, loaded on each connection before anything else is sent on it: a script
  /// missing from Redis's cache (after a restart) would otherwise be sent again after its
  /// NOSCRIPT answer, behind the steps sent meanwhile, and two steps could run out of order.
  static var all: [RedisScript] {
    [
      take, put, leave, rejoin, purgeWaiting, withdraw, issue, report, endLeaseOfServer, endLease,
      extend, setClaim, takeDue, forget, strand, settleStranded, releaseStranded, moveStranded,
      snapshot, heartbeat, retire, publishConfig, readConfig,
    ]
  }

  /// ARGV: balancer, ticket, token, client, lease ms, claim ms. The oldest free server, leased
  /// at once: `{1, now, lease}`; or the client joins the line: `{0, now, entry}`.
  static let take = script(
    """
    local t = now()
    while true do
      local s = redis.call('LPOP', P .. ':free')
      if not s then break end
      if redis.call('HGET', P .. ':state', s) == 'free' then
        return {1, t, new_lease(ARGV[3], s, ARGV[4], ARGV[1], ARGV[5], ARGV[6], t)}
      end
    end
    local entry = ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4]
    redis.call('RPUSH', P .. ':waiting', entry)
    return {0, t, entry}
    """)

  /// ARGV: balancer, server, lease ms, claim ms. Puts a server back (see `put_server`), and
  /// clears its withdrawal: the balancer decided it may serve again.
  static let put = script(
    """
    redis.call('SREM', P .. ':withdrawn', ARGV[2])
    return put_server(ARGV[2], ARGV[1], ARGV[3], ARGV[4], now())
    """)

  /// ARGV: entry. A waiting client leaves the line.
  static let leave = script("return redis.call('LREM', P .. ':waiting', 1, ARGV[1])")

  /// ARGV: lease ms, claim ms, then entries, oldest first. Clients waiting at a balancer whose
  /// connection to Redis was lost take their places again, unless they are still in the line:
  /// a free server at once if there is one (leased: `{ticket, lease}` in the answer), else the
  /// end of the line. One that was served while the answer was lost (its lease exists) gets
  /// that lease again, `{ticket, lease, 1}`, and a grant of it still queued is dropped.
  /// `{now, {{ticket, lease[, 1]}...}}`.
  static let rejoin = script(
    """
    local t = now()
    local served = {}
    for i = 3, #ARGV do
      local e = ARGV[i]
      local b, ticket, token, client = string.match(e, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
      local f = token and fields(token)
      if f and f[4] == b then
        local g = P .. ':grants:' .. b
        for _, text in ipairs(redis.call('LRANGE', g, 0, -1)) do
          if string.sub(text, 1, #ticket + 1) == ticket .. '|' then
            redis.call('LREM', g, 1, text)
          end
        end
        table.insert(served, {ticket, f, 1})
      elseif token and not f and not redis.call('LPOS', P .. ':waiting', e) then
        local server = false
        while true do
          local s = redis.call('LPOP', P .. ':free')
          if not s then break end
          if redis.call('HGET', P .. ':state', s) == 'free' then server = s break end
        end
        if server then
          table.insert(served, {ticket, new_lease(token, server, client, b, ARGV[1], ARGV[2], t)})
        else
          redis.call('RPUSH', P .. ':waiting', e)
        end
      end
    end
    return {t, served}
    """)

  /// Takes out of the line the clients of balancers that are no longer alive.
  static let purgeWaiting = script(
    """
    local removed = 0
    local alive = {}
    for _, e in ipairs(redis.call('LRANGE', P .. ':waiting', 0, -1)) do
      local b = string.match(e, '^([^|]*)|')
      if b and alive[b] == nil then
        alive[b] = redis.call('EXISTS', P .. ':alive:' .. b) == 1
      end
      if not b or not alive[b] then
        removed = removed + redis.call('LREM', P .. ':waiting', 1, e)
      end
    end
    return removed
    """)

  /// ARGV: server. Out of the free list, marked `out` unless leased, and withdrawn: a report
  /// of its lease does not put it back.
  static let withdraw = script(
    """
    redis.call('SADD', P .. ':withdrawn', ARGV[1])
    redis.call('LREM', P .. ':free', 0, ARGV[1])
    local st = redis.call('HGET', P .. ':state', ARGV[1])
    if not (st and string.sub(st, 1, 7) == 'leased:') then
      redis.call('HSET', P .. ':state', ARGV[1], 'out')
    end
    return 1
    """)

  /// ARGV: token, server, client, balancer, lease ms, claim ms. Records a lease (`{now, lease}`).
  static let issue = script(
    """
    local t = now()
    return {t, new_lease(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], t)}
    """)

  /// ARGV: token, port[, balancer, lease ms, claim ms]. Ends the lease if its server has that
  /// port, and (given the last three) puts the server back in the same step unless it was
  /// withdrawn (down, or left the pool): `{1, now, lease, put}` (`put` as `put_server`
  /// answers), `{1, now, lease, 'withdrawn'}`, `{1, now, lease}` (not put back), or `{0, now}`.
  static let report = script(
    """
    local t = now()
    local server = redis.call('HGET', lease_key(ARGV[1]), 'server')
    if not server or tonumber(string.match(server, '(%d+)$')) ~= tonumber(ARGV[2]) then
      return {0, t}
    end
    local f = end_lease(ARGV[1], 'reported', t)
    if f then redis.call('SADD', P .. ':lease_reporters', server) end
    local st = redis.call('HGET', P .. ':state', server)
    if #ARGV >= 5 and f and redis.call('SISMEMBER', P .. ':withdrawn', server) == 1 then
      return {1, t, f, 'withdrawn'}
    end
    if #ARGV >= 5 and st and string.sub(st, 1, 5) == 'idle:' then
      return {1, t, f, put_server(server, ARGV[3], ARGV[4], ARGV[5], t)}
    end
    return {1, t, f}
    """)

  /// ARGV: server, reason. Ends the server's lease, if it holds one: `{1, now, lease}` or
  /// `{0, now}`; `{2, now}` for a report (reason `reported`) of a server that has reported with
  /// a lease, which a report without one cannot be.
  static let endLeaseOfServer = script(
    """
    local t = now()
    if ARGV[2] == 'reported' and redis.call('SISMEMBER', P .. ':lease_reporters', ARGV[1]) == 1 then
      return {2, t}
    end
    local st = redis.call('HGET', P .. ':state', ARGV[1])
    if not (st and string.sub(st, 1, 7) == 'leased:') then return {0, t} end
    local f = end_lease(string.sub(st, 8), ARGV[2], t)
    if not f then return {0, t} end
    return {1, t, f}
    """)

  /// ARGV: token, reason (`expired` or `reclaimed`). Ends the lease: `{1, now, lease}` or
  /// `{0, now}` if it had ended.
  static let endLease = script(
    """
    local t = now()
    local f = end_lease(ARGV[1], ARGV[2], t)
    if not f then return {0, t} end
    return {1, t, f}
    """)

  /// ARGV: token, milliseconds from now, 1 to count an extension. A new deadline; the check
  /// mark is cleared.
  static let extend = script(
    """
    local k = lease_key(ARGV[1])
    if redis.call('EXISTS', k) == 0 then return 0 end
    redis.call('HSET', k, 'deadline', now() + tonumber(ARGV[2]), 'checking', 0)
    if ARGV[3] == '1' then count(k, 'ext') end
    return 1
    """)

  /// ARGV: token, claim. What a claim check found.
  static let setClaim = script(
    """
    local k = lease_key(ARGV[1])
    if redis.call('EXISTS', k) == 0 then return 0 end
    redis.call('HSET', k, 'claim', ARGV[2])
    return 1
    """)

  /// ARGV: kind (`overdue` or `unclaimed`), stale ms. Leases due for a check, marked as being
  /// checked; a mark older than `stale` (its checker died) counts as none. `{now, {lease...}}`.
  /// A token without its lease (a hand edit) is taken out of the set, and a time that is no
  /// number counts as 0, rather than failing the check of every lease.
  static let takeDue = script(
    """
    local t = now()
    local stale = tonumber(ARGV[2])
    local due = {}
    for _, token in ipairs(redis.call('SMEMBERS', P .. ':leases')) do
      local k = lease_key(token)
      local l = redis.call('HMGET', k, 'server', 'deadline', 'checking', 'cdl', 'claim', 'csince')
      if not l[1] then
        -- A token without its lease: nothing to check, and nothing to keep.
        redis.call('SREM', P .. ':leases', token)
      elseif ARGV[1] == 'overdue' then
        local checking = tonumber(l[3]) or 0
        if (checking == 0 or t - checking > stale) and (tonumber(l[2]) or 0) <= t then
          redis.call('HSET', k, 'checking', t)
          table.insert(due, fields(token))
        end
      else
        local cdl = tonumber(l[4]) or 0
        if (l[5] == 'unclaimed' and cdl > 0 and cdl <= t)
          or (l[5] == 'checking' and t - (tonumber(l[6]) or 0) > stale) then
          redis.call('HSET', k, 'claim', 'checking', 'csince', t)
          table.insert(due, fields(token))
        end
      end
    end
    return {t, due}
    """)

  /// ARGV: server. Forgets a server that left the pool (unless it holds a lease); not its
  /// stranded leases.
  static let forget = script(
    """
    local st = redis.call('HGET', P .. ':state', ARGV[1])
    if st and string.sub(st, 1, 7) == 'leased:' then return 0 end
    redis.call('LREM', P .. ':free', 0, ARGV[1])
    redis.call('HDEL', P .. ':state', ARGV[1])
    redis.call('HDEL', P .. ':served', ARGV[1])
    redis.call('SREM', P .. ':withdrawn', ARGV[1])
    redis.call('SREM', P .. ':lease_reporters', ARGV[1])
    return 1
    """)

  /// ARGV: server, then tokens. Holds a down server back for these leases, with any it holds
  /// (a token it holds already is not added twice: a step sent again may have run).
  static let strand = script(
    """
    local tokens = redis.call('HGET', P .. ':stranded', ARGV[1]) or ''
    local known = {}
    for token in string.gmatch(tokens, '%S+') do known[token] = true end
    for i = 2, #ARGV do
      if not known[ARGV[i]] then
        known[ARGV[i]] = true
        if tokens == '' then tokens = ARGV[i] else tokens = tokens .. ' ' .. ARGV[i] end
      end
    end
    redis.call('HSET', P .. ':stranded', ARGV[1], tokens)
    return 1
    """)

  /// ARGV: server, token. A stranded lease is settled at its server; the server stays held back
  /// (with the others, or none left) until `releaseStranded`.
  static let settleStranded = script(
    """
    local tokens = redis.call('HGET', P .. ':stranded', ARGV[1])
    if not tokens then return 0 end
    local left = {}
    for token in string.gmatch(tokens, '%S+') do
      if token ~= ARGV[2] then table.insert(left, token) end
    end
    redis.call('HSET', P .. ':stranded', ARGV[1], table.concat(left, ' '))
    return 1
    """)

  /// ARGV: server. No longer held back by stranded leases: it is handed out again.
  static let releaseStranded = script(
    "return redis.call('HDEL', P .. ':stranded', ARGV[1])")

  /// ARGV: old, new. The stranded leases of `old` (an entry that left the pool) hold back `new`
  /// (an entry for the same process that joins it), with any it holds; nothing if `old` has none
  /// (another balancer moved them first).
  static let moveStranded = script(
    """
    local moved = redis.call('HGET', P .. ':stranded', ARGV[1])
    if not moved then return 0 end
    redis.call('HDEL', P .. ':stranded', ARGV[1])
    local held = redis.call('HGET', P .. ':stranded', ARGV[2]) or ''
    if moved == '' then moved = held elseif held ~= '' then moved = held .. ' ' .. moved end
    redis.call('HSET', P .. ':stranded', ARGV[2], moved)
    return 1
    """)

  /// The whole of the books: `{now, free, waiting count, state (flat), counts (flat), served
  /// (flat), {lease...}, stranded (flat)}`.
  static let snapshot = script(
    """
    local leases = {}
    for _, token in ipairs(redis.call('SMEMBERS', P .. ':leases')) do
      local f = fields(token)
      if f then table.insert(leases, f) end
    end
    return {now(), redis.call('LRANGE', P .. ':free', 0, -1), redis.call('LLEN', P .. ':waiting'),
      redis.call('HGETALL', P .. ':state'), redis.call('HGETALL', P .. ':counts'),
      redis.call('HGETALL', P .. ':served'), leases, redis.call('HGETALL', P .. ':stranded')}
    """)

  /// ARGV: balancer, ttl ms. Marks the balancer alive, and takes or keeps the coordinator's
  /// lock: `{1 if it holds it, 1 if its alive mark had lapsed}` (its waiting clients may then
  /// have been dropped from the line, as those of a dead balancer).
  static let heartbeat = script(
    """
    local lapsed = redis.call('EXISTS', P .. ':alive:' .. ARGV[1]) == 0 and 1 or 0
    redis.call('SET', P .. ':alive:' .. ARGV[1], 1, 'PX', ARGV[2])
    local holder = redis.call('GET', P .. ':coordinator')
    if holder == ARGV[1] then
      redis.call('PEXPIRE', P .. ':coordinator', ARGV[2])
      return {1, lapsed}
    end
    if not holder then
      redis.call('SET', P .. ':coordinator', ARGV[1], 'PX', ARGV[2])
      return {1, lapsed}
    end
    return {0, lapsed}
    """)

  /// ARGV: balancer. A balancer that stops: no longer alive, and the lock is free.
  static let retire = script(
    """
    redis.call('DEL', P .. ':alive:' .. ARGV[1], P .. ':grants:' .. ARGV[1])
    if redis.call('GET', P .. ':coordinator') == ARGV[1] then
      redis.call('DEL', P .. ':coordinator')
    end
    return 1
    """)

  /// ARGV: the pool as servers.json, and `first` for a balancer's own pool offered because it
  /// read none (anything else for a change made at the balancer). Stores it if it differs and,
  /// for `first`, only while there is still none: the new version; 0 if it is the pool there
  /// already; -1 if a `first` came after another pool.
  static let publishConfig = script(
    """
    local current = redis.call('GET', P .. ':config')
    if current == ARGV[1] then return 0 end
    if current and ARGV[2] == 'first' then return -1 end
    redis.call('SET', P .. ':config', ARGV[1])
    return redis.call('INCR', P .. ':config:version')
    """)

  /// The pool's version and text: `{version, text}` (0 and nil if none was published).
  static let readConfig = script(
    """
    return {tonumber(redis.call('GET', P .. ':config:version') or '0'),
      redis.call('GET', P .. ':config')}
    """)
}
