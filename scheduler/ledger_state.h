/* scheduler/ledger_state.h: the engine's ledger (engine/ledger.h) bound to the PostgreSQL state
 * (state/state.h) under one job lease. Every write is fenced by the lease: when another engine
 * took the job, the next write fails with LEASE_LOST and the engine stops before its next APPEND. */
#ifndef IMAPFLEET_SCHEDULER_LEDGER_STATE_H
#define IMAPFLEET_SCHEDULER_LEDGER_STATE_H

#include "engine/ledger.h"
#include "state/state.h"

struct ledger_state;

/* A finished folder's status and last rows wait for the next statement that writes anyway; once this
 * many folders wait they are written on their own, so that a pass over many small folders does
 * not hold all of them (a crash before the write leaves their last windows open: resumed by
 * matching). */
#define LEDGER_STATE_HELD_FOLDERS_MAX 64
/* At most this many folders' first windows begin ahead in one flush (the engine's windows_ahead,
 * engine/ledger.h): every one is an open window to match after a crash, and the rows of all of them
 * wait for the same later write. */
#define LEDGER_STATE_AHEAD_MAX 32

/* sc is borrowed (one thread's connection); the lease is copied. */
struct ledger_state *ledger_state_new(struct state_conn *sc, const struct state_lease *lease);
void ledger_state_free(struct ledger_state **ls);
/* The connection pair this ledger records windows for (0, the default: the account's first; a
 * helper lane its lane number), so that pairs copying windows of one folder at once each keep
 * their own window (state_ledger_batch_set_pair). */
void ledger_state_set_pair(struct ledger_state *ls, unsigned pair);
/* Writes what the ledger still holds back (a window's end and rows wait for the next statement that
 * writes anyway): call it when the engine returns, before the job is finished or failed. */
int ledger_state_flush(struct ledger_state *ls, struct fleet_err *err);
struct ledger ledger_state_bind(struct ledger_state *ls);

#endif
