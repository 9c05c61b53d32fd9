#include "fapiao/json.h"
#include "fapiao/money.h"
#include <stdio.h>
