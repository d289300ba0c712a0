-- release.lua: the call never reached the provider: request, tokens, slots
-- and reservations given back; see settle() in common.lua.
return settle(true)
