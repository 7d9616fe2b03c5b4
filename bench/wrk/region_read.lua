-- Authorized history reads: GET <BENCH_PATH> with a user token (env BENCH_TOKEN, BENCH_APIKEY).
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["apikey"] = os.getenv("BENCH_APIKEY")
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("read: HTTP " .. status .. " " .. body .. "\n")
  end
end
