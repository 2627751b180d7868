/*
 * restore-sim: the list of scenarios (sim-scenarios.c; their code is in scen-*.c).
 */
#ifndef SIM_SCENARIOS_H
#define SIM_SCENARIOS_H

#include <stdbool.h>
#include <stddef.h>

#include "sim-model.h"

extern const struct scenario sim_scenarios[];
extern const size_t sim_nr_scenarios;

/* The scenario named NAME, or NULL. */
const struct scenario *scenario_find(const char *name);

/* Does the name of sc match PATTERN: a shell pattern (fnmatch) or a part of the name? */
bool scenario_matches(const struct scenario *sc, const char *pattern);

#endif
