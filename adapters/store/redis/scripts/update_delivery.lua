-- PhoneState::update_delivery: applies a provider's report to the
-- verification whose newest SMS it names, if it moves that SMS's state
-- forward (DeliveryState::rank); late or repeated reports change nothing.
-- KEYS[1]: the phone's key (the store found it by the message's link).
-- ARGV: provider, message id, state, unix s, then the error code if the
-- report has one.
-- Returns {'updated', the verification packed, now} or {'unchanged'}.
-- domain/delivery.rs: DeliveryState::rank.
local RANK = {queued = 0, sent = 1, delivered = 2, undelivered = 2, failed = 2}
local key = KEYS[1]
local now = now_ms()
local state = load(key)
sweep(state, now)
local delivery, record
for _, r in ipairs(state[V]) do
  local d = r[DELIVERY]
  if d and d[D_PROVIDER] == ARGV[1] and d[D_MESSAGE_ID] == ARGV[2] then
    delivery, record = d, r
    break
  end
end
if not delivery or RANK[delivery[D_STATE]] >= RANK[ARGV[3]] then
  return {'unchanged'}
end
delivery[D_STATE] = ARGV[3]
delivery[D_UPDATED_AT] = tonumber(ARGV[4])
if ARGV[5] then
  delivery[D_ERROR_CODE] = ARGV[5]
end
save(key, state)
return {'updated', cmsgpack.pack(record), now}
