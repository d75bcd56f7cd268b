#ifndef PIAM_CSYSTEMD_SHIM_H
#define PIAM_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#endif
