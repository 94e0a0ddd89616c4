/* Helpers shared by the rl tests (cmocka 1.1.5 has no floating-point asserts). */
#ifndef AHA_RL_TEST_H
#define AHA_RL_TEST_H

#include <math.h>

#define assert_near(actual, expected, tolerance)                                               \
    do {                                                                                       \
        double a_ = (double)(actual), e_ = (double)(expected), t_ = (double)(tolerance);       \
        if (!(fabs(a_ - e_) <= t_))                                                            \
            fail_msg("%s = %.17g, expected %.17g (tolerance %g)", #actual, a_, e_, t_);        \
    } while (0)

#endif
