-- The lease/report cycle: GET / takes a server (302 with its Location), and a later
-- GET /port_update/<port>?lease=<token> gives that same lease back, so the pool never drains.
-- Each wrk thread keeps a FIFO of the leases it has been given and not yet reported.
local leased = {}
local first, last = 1, 0

request = function()
  if first <= last then
    local report = leased[first]
    leased[first] = nil
    first = first + 1
    -- As a factorial server reports: asking for the least answer (a 204).
    return wrk.format("GET", report, { ["Prefer"] = "return=minimal" })
  end
  return wrk.format("GET", "/")
end

response = function(status, headers, body)
  local location = headers["Location"]
  if location then
    local port = location:match(":(%d+)/")
    if port then
      local lease = location:match("lease=(%x+)")
      last = last + 1
      leased[last] = "/port_update/" .. port .. (lease and ("?lease=" .. lease) or "")
    end
  end
end
