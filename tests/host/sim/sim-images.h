/*
 * restore-sim: the images of a scenario, from its model: JSON encoded by crit (CRIU's own
 * encoder), pages-N.img written here, CRIU 4.2 pagemaps encoded here.
 */
#ifndef SIM_IMAGES_H
#define SIM_IMAGES_H

#include <sys/types.h>

#include "sim-model.h"

/* Every image of s's model into s->imgdir (JSON in s->jsondir, then crit encode). */
int write_images(const struct sim *s);

/* Negative tests: damage an image file in place. */
int corrupt_magic(const char *path);	      /* the image's own magic */
int truncate_by(const char *path, off_t cut); /* CUT bytes off its end */

#endif
