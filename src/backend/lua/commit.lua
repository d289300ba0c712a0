-- commit.lua: the call was sent; see settle() in common.lua.
return settle(false)
