-- wrk script of make bench ONLY=ledger: each request a line of the file
-- named by CR_PATHS, drawn at random: "PATH" (a GET) or "PATH<TAB>BODY"
-- (a form POST).  done() prints one JSON line, as scripts/bench.lua.
local reqs = {}

function init(args)
    wrk.headers["User-Agent"] = os.getenv("CR_UA")
    for line in io.lines(os.getenv("CR_PATHS")) do
        local path, body = line:match("^([^\t]+)\t(.*)$")
        if path then
            reqs[#reqs + 1] = wrk.format("POST", path,
                { ["Content-Type"] = "application/x-www-form-urlencoded",
                  ["Accept"] = "application/json" }, body)
        else
            reqs[#reqs + 1] = wrk.format("GET", line)
        end
    end
    math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
    return reqs[math.random(#reqs)]
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        '{"requests":%d,"duration_us":%d,"non_2xx_3xx":%d,' ..
        '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
        summary.requests, summary.duration, e.status,
        latency:percentile(50), latency:percentile(99), latency.max))
end
