#ifndef RAGD_CSYSTEMD_SHIM_H
#define RAGD_CSYSTEMD_SHIM_H
// sd_notify, sd_listen_fds and sd_journal_sendv import directly (sd_journal_send is variadic
// and cannot be called from Swift, so the journal is written with sd_journal_sendv).
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#endif
