#include "fapiao/store.h"
#include "fapiao/server.h"
