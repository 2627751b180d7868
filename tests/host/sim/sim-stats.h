/* restore-sim: the daemon's --stats-file against the model. */
#ifndef SIM_STATS_H
#define SIM_STATS_H

#include "sim-model.h"

/*
 * Write the model's counts to DIR/expect.json and check s->statspath against them with jq
 * (SIM_STATS_JQ replaces the filter). 0 if they agree, -1 (logged) if not.
 */
int check_stats(const struct sim *s);

#endif
