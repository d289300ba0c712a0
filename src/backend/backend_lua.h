/* backend_lua.h: the Lua scripts of the Redis backend, compiled in from
 * the .lua files of src/backend/lua/ by scripts/embed_lua.sh (common.lua prepended to
 * each). What each takes and returns is written at the top of its .lua file.
 * Thread-safety: constants; any thread. */
#ifndef QT_BACKEND_LUA_H
#define QT_BACKEND_LUA_H

extern const char qt_backend_lua_admit[];
extern const char qt_backend_lua_commit[];
extern const char qt_backend_lua_release[];
extern const char qt_backend_lua_heartbeat[];
extern const char qt_backend_lua_control[];

#endif /* QT_BACKEND_LUA_H */
