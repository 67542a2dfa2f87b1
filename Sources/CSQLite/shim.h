// The system SQLite, plus the destructor constant Swift cannot import.
#ifndef VALET_CSQLITE_SHIM_H
#define VALET_CSQLITE_SHIM_H
#include <sqlite3.h>
static const sqlite3_destructor_type VALET_SQLITE_TRANSIENT = (sqlite3_destructor_type)-1;
#endif
