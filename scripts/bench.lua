-- wrk script of make bench: each request is a path (or "PATH<TAB>BODY",
-- a form POST) drawn at random from the file named by CR_PATHS;
-- CR_CLOSE=1 sends "Connection: close" (a new connection per request).
-- done() prints one JSON line of results.

-- Requests are formatted once in init(): the client spends as little as
-- it can per request (it shares a 2-core machine with the server).
local reqs = {}

function init(args)
    -- A phone's User-Agent: the WeChat and bot regexes run on it, as in
    -- production.
    wrk.headers["User-Agent"] = os.getenv("CR_UA")
    if os.getenv("CR_CLOSE") == "1" then
        wrk.headers["Connection"] = "close"
    end
    -- "PATH<TAB>BODY": a form POST (make bench ONLY=ledger's right PINs).
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
        '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,' ..
        '"write":%d,"timeout":%d,"non_2xx_3xx":%d,' ..
        '"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
        summary.requests, summary.duration, e.connect, e.read, e.write,
        e.timeout, e.status, latency:percentile(50), latency:percentile(99),
        latency:percentile(99.9), latency.max, latency.mean))
end
