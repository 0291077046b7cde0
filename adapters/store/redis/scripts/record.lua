-- The record's layout, the Lua side of record.rs, joined onto the front of
-- every script that reads a record: 64 bytes of hash, the attempts left in
-- digits, then, once an SMS went out, a line break before each of provider,
-- message id, state, rank, unix seconds and error code.

-- The record at `key`, or nil. pcall: a key of another type (a hash, as
-- otpd stored codes before) is no code.
local function get_record(key)
  local record = redis.pcall('GET', key)
  if type(record) == 'string' then
    return record
  end
end

-- A record's parts: its hash, its attempts left (the digits as stored), and
-- its delivery's fields in order ({} before an SMS went out).
local function read_record(record)
  local hash = string.sub(record, 1, 64)
  local eol = string.find(record, '\n', 65, true)
  local fields = {}
  if not eol then
    return hash, string.sub(record, 65), fields
  end
  for field in string.gmatch(string.sub(record, eol + 1) .. '\n', '([^\n]*)\n') do
    fields[#fields + 1] = field
  end
  return hash, string.sub(record, 65, eol - 1), fields
end

-- A record from the parts read_record gives.
local function write_record(hash, attempts, fields)
  if #fields == 0 then
    return hash .. attempts
  end
  return hash .. attempts .. '\n' .. table.concat(fields, '\n')
end

