/* The built-in demo (keel --demo). */
#ifndef KEEL_DEMO_H
#define KEEL_DEMO_H

/* Starts three demo origins on ephemeral loopback ports and keel in front of them on
 * 127.0.0.1:8080 (KEEL_DEMO_ADDR overrides). Returns the exit code. */
int demo_main(void);

#endif
