-- Message inserts: POST /rest/v1/messages, a unique client_msg_id per request (run nonce + thread id + counter).
local conversation = os.getenv("BENCH_CONVERSATION")
local sender = os.getenv("BENCH_SENDER")
local nonce = os.getenv("BENCH_NONCE")
local counter = 0
local next_thread = 0
-- thread_id is a global that setup() sets in each thread's own Lua state (a local would shadow it).

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end

function init(args)
  wrk.method = "POST"
  wrk.path = "/rest/v1/messages"
  wrk.headers["apikey"] = os.getenv("BENCH_APIKEY")
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Prefer"] = "return=minimal"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"conversation_id":"%s","sender_id":"%s","client_msg_id":"wrk-%s-%d-%d","content":"benchmark message"}',
    conversation, sender, nonce, thread_id, counter)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 201 then
    io.stderr:write("insert: HTTP " .. status .. " " .. body .. "\n")
  end
end
