-- wrk script: every request spends one prepared one-time credential, never twice.
--
--   wrk -s benchmarks/one_use.lua URL -- LINES THREADS CHECK BASE_STEP PERIOD
--
-- LINES holds one credential a line, tab-separated: path, Cookie header (may be empty),
-- form body with "{code}" where the code goes, then the codes for the time steps
-- BASE_STEP, BASE_STEP+1, ... separated by spaces. Thread n (1-based) takes lines n,
-- n+THREADS, ... and picks the code of the step it is in when it sends (os.time()).
-- CHECK says what an accepted answer is: "authgate" (303 to /login/next, the session
-- raised) or "privacyidea" (200 with "authentication": "ACCEPT" and "value": true).
-- A thread that runs out of lines sends its last one again: a replay, refused and counted
-- (the run is then invalid: prepare more credentials). done() prints one line that
-- benchmarks/loadgen.py parses: "one-use: accepted=.. refused=.. exhausted=.. late=.. used=a,b".

local threads = {}
local count = 0

function setup(thread)
   count = count + 1
   thread:set("id", count)
   table.insert(threads, thread)
end

local function split(text, sep)
   local out, start = {}, 1
   while true do
      local at = string.find(text, sep, start, true)
      if at == nil then
         table.insert(out, string.sub(text, start))
         return out
      end
      table.insert(out, string.sub(text, start, at - 1))
      start = at + 1
   end
end

function init(args)
   local path, nthreads = args[1], tonumber(args[2])
   check, base, period = args[3], tonumber(args[4]), tonumber(args[5])
   lines, used, accepted, refused, exhausted, late = {}, 0, 0, 0, 0, 0
   sample = ""
   local n = 0
   for line in io.lines(path) do
      if n % nthreads == id - 1 then
         local f = split(line, "\t")
         table.insert(lines, {path = f[1], cookie = f[2], body = f[3],
                              codes = split(f[4], " ")})
      end
      n = n + 1
   end
end

function request()
   local line
   if used < #lines then
      used = used + 1
      line = lines[used]
   else
      exhausted = exhausted + 1
      line = lines[#lines]
   end
   local code = line.codes[math.floor(os.time() / period) - base + 1]
   if code == nil or code == "" then
      late = late + 1
      code = "000000"
   end
   local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
   if line.cookie ~= "" then
      headers["Cookie"] = line.cookie
   end
   local body = string.gsub(line.body, "{code}", code)
   return wrk.format("POST", line.path, headers, body)
end

local function is_accepted(status, headers, body)
   if check == "authgate" then
      -- the only 303 to /login/next is the one that raised the session (web/steps.py)
      local location = headers["Location"] or headers["location"] or ""
      return status == 303 and string.sub(location, 1, 11) == "/login/next"
   end
   return status == 200 and string.find(body, '"authentication":%s*"ACCEPT"') ~= nil
      and string.find(body, '"value":%s*true') ~= nil
end

function response(status, headers, body)
   if is_accepted(status, headers, body) then
      accepted = accepted + 1
   else
      refused = refused + 1
      if sample == "" then
         sample = status .. " " .. string.sub(string.gsub(body or "", "%s+", " "), 1, 160)
      end
   end
end

function done(summary, latency, requests)
   local a, r, e, l, u = 0, 0, 0, 0, {}
   local first = ""
   for _, thread in ipairs(threads) do
      a = a + thread:get("accepted")
      r = r + thread:get("refused")
      e = e + thread:get("exhausted")
      l = l + thread:get("late")
      table.insert(u, tostring(thread:get("used")))
      if first == "" then first = thread:get("sample") end
   end
   io.write(string.format("one-use: accepted=%d refused=%d exhausted=%d late=%d used=%s\n",
                          a, r, e, l, table.concat(u, ",")))
   if first ~= "" then io.write("one-use first refusal: " .. first .. "\n") end
end
