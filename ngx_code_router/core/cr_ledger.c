/*
 * cr_ledger: the verification ledger in PostgreSQL.  See cr_ledger.h.
 *
 * Every exchange is non-blocking libpq on the connection's socket, with
 * poll() bounded by the caller's deadline: a stalled or partitioned
 * server costs the calling thread at most that, never more.  (Name
 * resolution inside PQconnectStartParams is the one blocking step; nginx
 * calls this in a thread pool for that reason.)
 */

#define _DEFAULT_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <libpq-fe.h>

#include "cr_ledger.h"


struct cr_ledger_conn_s {
    PGconn     *pg;                     /* NULL: not connected */
    char       *conninfo;
    int64_t     offset_us;              /* the database's clock - ours */
    unsigned    timeout_ms;             /* statement_timeout */
    char        err[512];
};


/*
 * The schema, version 1.  code_router_verify is the one statement a
 * right PIN costs; see cr_ledger.h for what it answers.  The request row
 * is inserted first: a concurrent statement of the same request waits
 * for this one's commit on the primary key, then replays its answer.
 */
static const char  cr_ledger_schema_v1[] =
    "CREATE TABLE IF NOT EXISTS code_router_meta ("
    " name text PRIMARY KEY, value text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS code_router_verifications ("
    " fp bytea NOT NULL, kid smallint NOT NULL, serial bigint NOT NULL,"
    " count integer NOT NULL, first_at timestamptz NOT NULL,"
    " last_at timestamptz NOT NULL,"
    " PRIMARY KEY (fp, kid, serial));"
    "CREATE TABLE IF NOT EXISTS code_router_verify_requests ("
    " fp bytea NOT NULL, kid smallint NOT NULL, serial bigint NOT NULL,"
    " request text NOT NULL, count integer NOT NULL,"
    " first_at timestamptz NOT NULL, at timestamptz NOT NULL,"
    " PRIMARY KEY (fp, kid, serial, request));"
    "CREATE OR REPLACE FUNCTION code_router_verify(p_fp bytea,"
    " p_kid smallint, p_serial bigint, p_request text,"
    " p_deadline double precision)"
    " RETURNS TABLE (outcome text, verifications integer,"
    " first_verified bigint) LANGUAGE plpgsql AS $$"
    " DECLARE n integer; f timestamptz;"
    " BEGIN"
    "  IF extract(epoch FROM clock_timestamp()) > p_deadline THEN"
    "   RETURN QUERY SELECT 'late'::text, 0, 0::bigint; RETURN;"
    "  END IF;"
    "  INSERT INTO code_router_verify_requests"
    "   VALUES (p_fp, p_kid, p_serial, p_request, 0, now(), now())"
    "   ON CONFLICT DO NOTHING;"
    "  IF NOT FOUND THEN"
    "   SELECT q.count, q.first_at INTO n, f"
    "    FROM code_router_verify_requests q WHERE q.fp = p_fp"
    "    AND q.kid = p_kid AND q.serial = p_serial"
    "    AND q.request = p_request;"
    "   RETURN QUERY SELECT 'replayed'::text, n,"
    "    floor(extract(epoch FROM f))::bigint; RETURN;"
    "  END IF;"
    "  INSERT INTO code_router_verifications AS v"
    "   VALUES (p_fp, p_kid, p_serial, 1, now(), now())"
    "   ON CONFLICT (fp, kid, serial) DO UPDATE"
    "   SET count = v.count + 1, last_at = now()"
    "   RETURNING v.count, v.first_at INTO n, f;"
    "  UPDATE code_router_verify_requests q SET count = n, first_at = f"
    "   WHERE q.fp = p_fp AND q.kid = p_kid AND q.serial = p_serial"
    "   AND q.request = p_request;"
    "  RETURN QUERY SELECT 'counted'::text, n,"
    "   floor(extract(epoch FROM f))::bigint;"
    " END $$;"
    "INSERT INTO code_router_meta VALUES ('schema_version', '1')"
    " ON CONFLICT (name) DO UPDATE SET value = '1';";

/*
 * Version 2: prizes, redeemed once per code.  The first request's row
 * is the redemption; the same request again is answered the same; any
 * other gets "already_redeemed" with the time.  Two requests racing:
 * the second waits for the first's commit on the primary key.
 */
static const char  cr_ledger_schema_v2[] =
    "CREATE TABLE IF NOT EXISTS code_router_redemptions ("
    " fp bytea NOT NULL, kid smallint NOT NULL, serial bigint NOT NULL,"
    " request text NOT NULL, campaign text NOT NULL,"
    " redeemed_at timestamptz NOT NULL,"
    " PRIMARY KEY (fp, kid, serial));"
    "CREATE OR REPLACE FUNCTION code_router_redeem(p_fp bytea,"
    " p_kid smallint, p_serial bigint, p_request text, p_campaign text,"
    " p_deadline double precision)"
    " RETURNS TABLE (outcome text, redeemed_at bigint)"
    " LANGUAGE plpgsql AS $$"
    " DECLARE q text; t timestamptz;"
    " BEGIN"
    "  IF extract(epoch FROM clock_timestamp()) > p_deadline THEN"
    "   RETURN QUERY SELECT 'late'::text, 0::bigint; RETURN;"
    "  END IF;"
    "  INSERT INTO code_router_redemptions"
    "   VALUES (p_fp, p_kid, p_serial, p_request, p_campaign, now())"
    "   ON CONFLICT DO NOTHING;"
    "  IF FOUND THEN"
    "   RETURN QUERY SELECT 'redeemed'::text,"
    "    floor(extract(epoch FROM now()))::bigint; RETURN;"
    "  END IF;"
    "  SELECT x.request, x.redeemed_at INTO q, t"
    "   FROM code_router_redemptions x WHERE x.fp = p_fp"
    "   AND x.kid = p_kid AND x.serial = p_serial;"
    "  RETURN QUERY SELECT CASE WHEN q = p_request THEN 'replayed'"
    "   ELSE 'already_redeemed' END, floor(extract(epoch FROM t))::bigint;"
    " END $$;"
    "UPDATE code_router_meta SET value = '2'"
    " WHERE name = 'schema_version';";

/*
 * Version 3: the guard's wrong-PIN records, global.  code_router_guard
 * is cr_guard's policy (cr_guard.c) in one statement, under the code's
 * row lock (concurrent checks of one code, from any node, take turns):
 * "locked" with the time to try again, else the PIN's verdict, which
 * the node worked out but has not said, is recorded -- "wrong" counts
 * for the client (a lock from the free-th on) and spends one of the
 * code's tokens; "right" clears the client's record.  A right PIN takes
 * no lock and, from a client without wrong PINs, writes nothing (no
 * commit to wait for: it is admitted as of its snapshot, a valid place
 * for it among the concurrent checks, which it does not change).  Times
 * are the database's Unix seconds, so that every node reads one clock.
 */
static const char  cr_ledger_schema_v3[] =
    "CREATE TABLE IF NOT EXISTS code_router_guard_codes ("
    " fp bytea NOT NULL, kid smallint NOT NULL, serial bigint NOT NULL,"
    " tat bigint NOT NULL, PRIMARY KEY (fp, kid, serial));"
    "CREATE TABLE IF NOT EXISTS code_router_guard_clients ("
    " fp bytea NOT NULL, kid smallint NOT NULL, serial bigint NOT NULL,"
    " client bytea NOT NULL, fails integer NOT NULL, until bigint NOT NULL,"
    " PRIMARY KEY (fp, kid, serial, client));"
    "CREATE OR REPLACE FUNCTION code_router_guard(p_fp bytea,"
    " p_kid smallint, p_serial bigint, p_client bytea, p_right boolean,"
    " p_free integer, p_base integer, p_cap integer, p_interval integer,"
    " p_burst integer, p_deadline double precision)"
    " RETURNS TABLE (outcome text, wrong_pins integer, locked_until bigint,"
    " budget_tat bigint, retry_at bigint) LANGUAGE plpgsql AS $$"
    " DECLARE s bigint; t bigint; n integer; u bigint; at bigint;"
    "  k bigint; b bigint;"
    " BEGIN"
    "  IF extract(epoch FROM clock_timestamp()) > p_deadline THEN"
    "   RETURN QUERY SELECT 'late'::text, 0, 0::bigint, 0::bigint,"
    "    0::bigint; RETURN;"
    "  END IF;"
    "  IF p_right THEN"
    "   SELECT g.tat INTO t FROM code_router_guard_codes g"
    "    WHERE g.fp = p_fp AND g.kid = p_kid AND g.serial = p_serial;"
    "   IF NOT FOUND THEN t := 0; END IF;"
    "  ELSE"
    "   INSERT INTO code_router_guard_codes"
    "    VALUES (p_fp, p_kid, p_serial, 0) ON CONFLICT DO NOTHING;"
    "   SELECT g.tat INTO t FROM code_router_guard_codes g"
    "    WHERE g.fp = p_fp AND g.kid = p_kid AND g.serial = p_serial"
    "    FOR UPDATE;"
    "  END IF;"
    "  s := floor(extract(epoch FROM clock_timestamp()))::bigint;"
    "  b := greatest(p_burst, 1)::bigint;"
    "  SELECT a.fails, a.until INTO n, u FROM code_router_guard_clients a"
    "   WHERE a.fp = p_fp AND a.kid = p_kid AND a.serial = p_serial"
    "   AND a.client = p_client;"
    "  IF NOT FOUND THEN n := 0; u := 0; END IF;"
    "  at := CASE WHEN u > s THEN u ELSE 0 END;"
    "  IF n >= p_free THEN"
    "   k := t - (b - 1) * p_interval;"
    "   IF k > s AND k > at THEN at := k; END IF;"
    "  END IF;"
    "  IF at > 0 THEN"
    "   RETURN QUERY SELECT 'locked'::text, n, u, t, at; RETURN;"
    "  END IF;"
    "  IF p_right THEN"
    "   IF n > 0 OR u > 0 THEN"
    "    DELETE FROM code_router_guard_clients a WHERE a.fp = p_fp"
    "     AND a.kid = p_kid AND a.serial = p_serial"
    "     AND a.client = p_client;"
    "   END IF;"
    "   RETURN QUERY SELECT 'right'::text, 0, 0::bigint, t, 0::bigint;"
    "   RETURN;"
    "  END IF;"
    "  n := n + 1; u := 0;"
    "  IF n >= p_free THEN"
    "   u := s + CASE WHEN n - p_free >= 31 THEN p_cap::bigint"
    "    ELSE least(p_base::bigint << (n - p_free), p_cap::bigint) END;"
    "  END IF;"
    "  t := least(greatest(t, s) + p_interval, s + b * p_interval);"
    "  UPDATE code_router_guard_codes g SET tat = t"
    "   WHERE g.fp = p_fp AND g.kid = p_kid AND g.serial = p_serial;"
    "  INSERT INTO code_router_guard_clients AS a"
    "   VALUES (p_fp, p_kid, p_serial, p_client, n, u)"
    "   ON CONFLICT (fp, kid, serial, client) DO UPDATE"
    "   SET fails = n, until = u;"
    "  RETURN QUERY SELECT 'wrong'::text, n, u, t, 0::bigint;"
    " END $$;"
    "UPDATE code_router_meta SET value = '3'"
    " WHERE name = 'schema_version';";

/*
 * Version 4: scan counts across nodes.  Each node adds its cumulative
 * count of a code (one row per code and node), keeping the greater of
 * the row's and the one sent: sending a count again (a replay, a retry
 * after an outage, a statement that ran late) changes nothing, and a
 * node that lost its last second of scans in a crash is not moved back.
 * The total is the sum over the nodes.  One statement per batch (arrays,
 * unnest), rows written in key order (two nodes' batches lock the rows
 * they share in the same order: no deadlock).  The other nodes' rows are
 * read from the statement's snapshot (a CTE's writes are not visible to
 * the rest of the statement): this node's row is the upsert's own.
 * code_router_scans_since: the codes other nodes counted since a time
 * (their rows' at, indexed), with those nodes' sum: each node's poll,
 * so that it learns of scans of codes it has not scanned since.
 */
static const char  cr_ledger_schema_v4[] =
    "CREATE TABLE IF NOT EXISTS code_router_scan_counts ("
    " fp bytea NOT NULL, kid smallint NOT NULL, serial bigint NOT NULL,"
    " node text NOT NULL, count bigint NOT NULL,"
    " at timestamptz NOT NULL, PRIMARY KEY (fp, kid, serial, node));"
    "CREATE OR REPLACE FUNCTION code_router_scans(p_node text,"
    " p_fp text[], p_kid smallint[], p_serial bigint[], p_count bigint[])"
    " RETURNS TABLE (ord bigint, node_scans bigint, total_scans bigint)"
    " LANGUAGE sql AS $$"
    " WITH i AS (SELECT decode(x.fp, 'hex') AS fp, x.kid, x.serial,"
    "   x.count, x.ord FROM unnest(p_fp, p_kid, p_serial, p_count)"
    "   WITH ORDINALITY AS x(fp, kid, serial, count, ord)),"
    "  u AS (INSERT INTO code_router_scan_counts AS s"
    "   SELECT i.fp, i.kid, i.serial, p_node, i.count, now() FROM i"
    "   ORDER BY i.fp, i.kid, i.serial"
    "   ON CONFLICT (fp, kid, serial, node) DO UPDATE"
    "   SET count = greatest(s.count, excluded.count), at = now()"
    "   RETURNING s.fp, s.kid, s.serial, s.count)"
    " SELECT i.ord, u.count, u.count + coalesce((SELECT sum(o.count)"
    "   FROM code_router_scan_counts o WHERE o.fp = u.fp"
    "   AND o.kid = u.kid AND o.serial = u.serial"
    "   AND o.node <> p_node), 0)::bigint"
    "  FROM u JOIN i ON i.fp = u.fp AND i.kid = u.kid"
    "   AND i.serial = u.serial"
    " $$;"
    "CREATE INDEX IF NOT EXISTS code_router_scan_counts_at"
    " ON code_router_scan_counts (at);"
    "CREATE OR REPLACE FUNCTION code_router_scans_since(p_node text,"
    " p_since double precision)"
    " RETURNS TABLE (fp text, kid smallint, serial bigint, others bigint)"
    " LANGUAGE sql STABLE AS $$"
    " SELECT encode(c.fp, 'hex'), c.kid, c.serial, sum(c.count)::bigint"
    "  FROM code_router_scan_counts c"
    "  WHERE c.node <> p_node AND (c.fp, c.kid, c.serial) IN"
    "   (SELECT n.fp, n.kid, n.serial FROM code_router_scan_counts n"
    "    WHERE n.at > to_timestamp(p_since) AND n.node <> p_node)"
    "  GROUP BY c.fp, c.kid, c.serial"
    " $$;"
    "UPDATE code_router_meta SET value = '4'"
    " WHERE name = 'schema_version';";

/*
 * Version 5: receipts of cases and pallets (POST .../CODE/receive with a
 * ledger).  The first receipt of a code wins (ON CONFLICT DO NOTHING);
 * code_router_receive answers the first, fresh if this call made it.  A
 * concurrent first insert not yet in this statement's snapshot gives no
 * row: the caller asks again.  Every node pulls receipts newer than its
 * last poll (code_router_receipts_since, by the database's time).
 */
static const char  cr_ledger_schema_v5[] =
    "CREATE TABLE IF NOT EXISTS code_router_receipts ("
    " fp bytea NOT NULL, kid smallint NOT NULL, serial bigint NOT NULL,"
    " store text NOT NULL, dealer text NOT NULL,"
    " at timestamptz NOT NULL, PRIMARY KEY (fp, kid, serial));"
    "CREATE INDEX IF NOT EXISTS code_router_receipts_at"
    " ON code_router_receipts (at);"
    "CREATE OR REPLACE FUNCTION code_router_receive(p_fp bytea,"
    " p_kid smallint, p_serial bigint, p_store text, p_dealer text)"
    " RETURNS TABLE (fresh boolean, store text, dealer text, at bigint)"
    " LANGUAGE sql AS $$"
    " WITH i AS (INSERT INTO code_router_receipts AS r"
    "   VALUES (p_fp, p_kid, p_serial, p_store, p_dealer, now())"
    "   ON CONFLICT DO NOTHING RETURNING r.store, r.dealer, r.at)"
    " SELECT true, i.store, i.dealer,"
    "  floor(extract(epoch FROM i.at))::bigint FROM i"
    " UNION ALL"
    " SELECT false, r.store, r.dealer,"
    "  floor(extract(epoch FROM r.at))::bigint"
    "  FROM code_router_receipts r WHERE r.fp = p_fp AND r.kid = p_kid"
    "  AND r.serial = p_serial AND NOT EXISTS (SELECT 1 FROM i)"
    " $$;"
    "CREATE OR REPLACE FUNCTION code_router_receipts_since("
    " p_since double precision)"
    " RETURNS TABLE (fp text, kid smallint, serial bigint, store text,"
    " dealer text, at bigint)"
    " LANGUAGE sql STABLE AS $$"
    " SELECT encode(r.fp, 'hex'), r.kid, r.serial, r.store, r.dealer,"
    "  floor(extract(epoch FROM r.at))::bigint"
    "  FROM code_router_receipts r WHERE r.at > to_timestamp(p_since)"
    "  ORDER BY r.at"
    " $$;"
    "UPDATE code_router_meta SET value = '5'"
    " WHERE name = 'schema_version';";

/* Each version's script, from the one before (version 1's from an
 * empty database; its tables are made IF NOT EXISTS). */
static const char  *cr_ledger_upgrades[CR_LEDGER_SCHEMA + 1] = {
    NULL,
    cr_ledger_schema_v1,
    cr_ledger_schema_v2,
    cr_ledger_schema_v3,
    cr_ledger_schema_v4,
    cr_ledger_schema_v5
};


static int cr_ledger_connect(cr_ledger_conn_t *c, int64_t deadline_us);
static void cr_ledger_drop(cr_ledger_conn_t *c);
static int cr_ledger_wait(cr_ledger_conn_t *c, short events,
    int64_t deadline_us);
static int cr_ledger_exec(cr_ledger_conn_t *c, const char *sql, int n,
    const char *const *params, int64_t deadline_us, PGresult **res);
static int cr_ledger_result_failed(cr_ledger_conn_t *c, PGresult *res,
    const char *what);
static int cr_ledger_u64(const char *s, size_t n, uint64_t max,
    uint64_t *v);
static int cr_ledger_outcome(const char *s, size_t n,
    const char *const *names);
static void cr_ledger_params(const cr_ledger_code_t *code, char *fp,
    char *kid, char *serial);
static void cr_ledger_fail(cr_ledger_conn_t *c, const char *what,
    const char *msg);
static void cr_ledger_deadline(cr_ledger_conn_t *c, int64_t deadline_us,
    char *out, size_t size);
static int cr_ledger_call(cr_ledger_conn_t *c, const char *fn,
    const char *sql, const cr_ledger_code_t *code, const char *request,
    const char *extra, int64_t deadline_us, int ncols, PGresult **res);
static int cr_ledger_run(cr_ledger_conn_t *c, const char *fn,
    const char *sql, const char *const *params, int n, char *deadline,
    int64_t deadline_us, int rows, int ncols, PGresult **res);
static int cr_ledger_name_valid(const char *s, size_t n, size_t max,
    const char *more);
static int cr_ledger_hex(char c);
static int cr_ledger_code_query(cr_ledger_conn_t *c,
    const cr_ledger_code_t *code, const char *sql, int64_t deadline_us,
    PGresult **res);
static char *cr_ledger_scans_arrays(const cr_ledger_scan_t *s, size_t n,
    char **arr);
static int cr_ledger_parsed(cr_ledger_conn_t *c, PGresult *res, int rc,
    const char *fn);


cr_ledger_conn_t *
cr_ledger_conn_new(const char *conninfo, unsigned timeout_ms)
{
    cr_ledger_conn_t  *c;

    c = calloc(1, sizeof(cr_ledger_conn_t));
    if (c == NULL) {
        return NULL;
    }

    c->conninfo = strdup(conninfo);
    if (c->conninfo == NULL) {
        free(c);
        return NULL;
    }

    c->timeout_ms = timeout_ms ? timeout_ms : 1;

    return c;
}


void
cr_ledger_conn_free(cr_ledger_conn_t *c)
{
    if (c == NULL) {
        return;
    }

    cr_ledger_drop(c);
    free(c->conninfo);
    free(c);
}


const char *
cr_ledger_error(cr_ledger_conn_t *c)
{
    return c->err;
}


int
cr_ledger_verify(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    const char *request, int64_t deadline_us, cr_ledger_answer_t *a)
{
    int        rc;
    PGresult  *res;

    rc = cr_ledger_call(c, "code_router_verify",
                        "SELECT outcome, verifications, first_verified "
                        "FROM code_router_verify($1::bytea, $2::smallint, "
                        "$3::bigint, $4::text, $5::double precision)",
                        code, request, NULL, deadline_us, 3, &res);
    if (rc != 0) {
        return rc;
    }

    rc = cr_ledger_parse_answer(PQgetvalue(res, 0, 0),
                                (size_t) PQgetlength(res, 0, 0),
                                PQgetvalue(res, 0, 1),
                                (size_t) PQgetlength(res, 0, 1),
                                PQgetvalue(res, 0, 2),
                                (size_t) PQgetlength(res, 0, 2), a);

    return cr_ledger_parsed(c, res, rc, "code_router_verify");
}


int
cr_ledger_redeem(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    const char *request, const char *campaign, int64_t deadline_us,
    cr_ledger_redemption_t *a)
{
    int        rc;
    PGresult  *res;

    rc = cr_ledger_call(c, "code_router_redeem",
                        "SELECT outcome, redeemed_at "
                        "FROM code_router_redeem($1::bytea, $2::smallint, "
                        "$3::bigint, $4::text, $6::text, "
                        "$5::double precision)",
                        code, request, campaign, deadline_us, 2, &res);
    if (rc != 0) {
        return rc;
    }

    rc = cr_ledger_parse_redemption(PQgetvalue(res, 0, 0),
                                    (size_t) PQgetlength(res, 0, 0),
                                    PQgetvalue(res, 0, 1),
                                    (size_t) PQgetlength(res, 0, 1), a);

    return cr_ledger_parsed(c, res, rc, "code_router_redeem");
}


int
cr_ledger_parse_redemption(const char *outcome, size_t outcome_len,
    const char *at, size_t at_len, cr_ledger_redemption_t *a)
{
    int       i;
    uint64_t  t;

    /* By cr_ledger_redeemed_e. */
    static const char *const  names[] = {
        "redeemed", "replayed", "already_redeemed", "late", NULL
    };

    if (outcome == NULL || at == NULL) {
        return -1;
    }

    i = cr_ledger_outcome(outcome, outcome_len, names);

    if (i < 0
        || cr_ledger_u64(at, at_len, INT64_MAX, &t) != 0
        || (i != CR_LEDGER_REDEEM_LATE && t == 0))
    {
        return -1;
    }

    a->outcome = (cr_ledger_redeemed_e) i;
    a->at = (int64_t) t;

    return 0;
}


int
cr_ledger_guard(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    const uint8_t *client, size_t client_len, int right,
    const cr_guard_policy_t *p, int64_t deadline_us, cr_ledger_guard_t *g)
{
    int          i, rc;
    char         fp[2 + 2 * CR_LEDGER_FP_LEN + 1], kid[8], serial[24];
    char         cl[2 + 2 * CR_LEDGER_CLIENT_MAX + 1], deadline[32];
    char         pol[5][12];
    int64_t      off;
    size_t       k;
    PGresult    *res;
    const char  *params[11];

    static const char  hex[] = "0123456789abcdef";

    if (client_len == 0 || client_len > CR_LEDGER_CLIENT_MAX) {
        snprintf(c->err, sizeof(c->err), "ledger: a bad client id");
        return -1;
    }

    cr_ledger_params(code, fp, kid, serial);

    cl[0] = '\\';
    cl[1] = 'x';

    for (k = 0; k < client_len; k++) {
        cl[2 + 2 * k] = hex[client[k] >> 4];
        cl[3 + 2 * k] = hex[client[k] & 0xf];
    }

    cl[2 + 2 * client_len] = '\0';

    snprintf(pol[0], sizeof(pol[0]), "%u", p->free);
    snprintf(pol[1], sizeof(pol[1]), "%u", p->base);
    snprintf(pol[2], sizeof(pol[2]), "%u", p->cap);
    snprintf(pol[3], sizeof(pol[3]), "%u", p->interval);
    snprintf(pol[4], sizeof(pol[4]), "%u", p->burst);

    params[0] = fp;
    params[1] = kid;
    params[2] = serial;
    params[3] = cl;
    params[4] = right ? "true" : "false";

    for (i = 0; i < 5; i++) {
        params[5 + i] = pol[i];
    }

    params[10] = deadline;

    rc = cr_ledger_run(c, "code_router_guard",
                       "SELECT outcome, wrong_pins, locked_until, "
                       "budget_tat, retry_at FROM code_router_guard("
                       "$1::bytea, $2::smallint, $3::bigint, $4::bytea, "
                       "$5::boolean, $6::integer, $7::integer, "
                       "$8::integer, $9::integer, $10::integer, "
                       "$11::double precision)",
                       params, 11, deadline, deadline_us, 1, 5, &res);
    if (rc != 0) {
        return rc;
    }

    rc = cr_ledger_parse_guard(PQgetvalue(res, 0, 0),
                               (size_t) PQgetlength(res, 0, 0),
                               PQgetvalue(res, 0, 1),
                               (size_t) PQgetlength(res, 0, 1),
                               PQgetvalue(res, 0, 2),
                               (size_t) PQgetlength(res, 0, 2),
                               PQgetvalue(res, 0, 3),
                               (size_t) PQgetlength(res, 0, 3),
                               PQgetvalue(res, 0, 4),
                               (size_t) PQgetlength(res, 0, 4), g);

    rc = cr_ledger_parsed(c, res, rc, "code_router_guard");
    if (rc != 0) {
        return rc;
    }

    /* The database's seconds in this host's clock (0 stays "none"). */
    off = c->offset_us / 1000000;

    if (g->until) {
        g->until -= off;
    }

    if (g->tat) {
        g->tat -= off;
    }

    if (g->retry) {
        g->retry -= off;
    }

    return 0;
}


int
cr_ledger_parse_guard(const char *outcome, size_t outcome_len,
    const char *fails, size_t fails_len, const char *until,
    size_t until_len, const char *tat, size_t tat_len, const char *retry,
    size_t retry_len, cr_ledger_guard_t *g)
{
    int       i;
    uint64_t  v[4];

    /* By cr_ledger_guarded_e. */
    static const char *const  names[] = {
        "right", "wrong", "locked", "late", NULL
    };

    if (outcome == NULL || fails == NULL || until == NULL || tat == NULL
        || retry == NULL)
    {
        return -1;
    }

    i = cr_ledger_outcome(outcome, outcome_len, names);

    if (i < 0
        || cr_ledger_u64(fails, fails_len, UINT32_MAX, &v[0]) != 0
        || cr_ledger_u64(until, until_len, INT64_MAX, &v[1]) != 0
        || cr_ledger_u64(tat, tat_len, INT64_MAX, &v[2]) != 0
        || cr_ledger_u64(retry, retry_len, INT64_MAX, &v[3]) != 0)
    {
        return -1;
    }

    /* A lock says when; a wrong PIN was counted; nothing else says a
     * time to try again. */
    if ((i == CR_LEDGER_GUARD_LOCKED) != (v[3] != 0)
        || (i == CR_LEDGER_GUARD_WRONG && v[0] == 0))
    {
        return -1;
    }

    g->outcome = (cr_ledger_guarded_e) i;
    g->fails = (uint32_t) v[0];
    g->until = (int64_t) v[1];
    g->tat = (int64_t) v[2];
    g->retry = (int64_t) v[3];

    return 0;
}


int
cr_ledger_show(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    int64_t deadline_us, cr_ledger_record_t *rec)
{
    int          rc, i;
    uint64_t     v[5];
    PGresult    *res;

    /* One row whatever there is: NULLs where nothing is. */
    rc = cr_ledger_code_query(c, code, "SELECT v.count, "
                        "floor(extract(epoch FROM v.first_at))::bigint, "
                        "floor(extract(epoch FROM v.last_at))::bigint, "
                        "(SELECT count(*) FROM code_router_verify_requests q "
                        "WHERE q.fp = $1::bytea AND q.kid = $2::smallint "
                        "AND q.serial = $3::bigint), "
                        "(SELECT floor(extract(epoch FROM x.redeemed_at))"
                        "::bigint FROM code_router_redemptions x "
                        "WHERE x.fp = $1::bytea AND x.kid = $2::smallint "
                        "AND x.serial = $3::bigint) "
                        "FROM (SELECT 1) one LEFT JOIN "
                        "code_router_verifications v "
                        "ON v.fp = $1::bytea AND v.kid = $2::smallint "
                        "AND v.serial = $3::bigint",
                        deadline_us, &res);
    if (rc != 0) {
        return rc;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1
        || PQnfields(res) != 5)
    {
        return cr_ledger_result_failed(c, res, "show");
    }

    for (i = 0; i < 5; i++) {
        v[i] = 0;

        if (PQgetisnull(res, 0, i)) {
            continue;
        }

        if (cr_ledger_u64(PQgetvalue(res, 0, i),
                          (size_t) PQgetlength(res, 0, i),
                          i == 0 ? UINT32_MAX : INT64_MAX, &v[i])
            != 0)
        {
            PQclear(res);
            snprintf(c->err, sizeof(c->err), "ledger: show: a record this "
                     "code-router cannot read");
            return -1;
        }
    }

    PQclear(res);

    rec->count = (uint32_t) v[0];
    rec->first = (int64_t) v[1];
    rec->last = (int64_t) v[2];
    rec->requests = v[3];
    rec->redeemed = (int64_t) v[4];

    return (rec->count == 0 && rec->redeemed == 0) ? CR_LEDGER_NOTFOUND : 0;
}


int
cr_ledger_scans(cr_ledger_conn_t *c, const char *node, cr_ledger_scan_t *s,
    size_t n, int64_t deadline_us)
{
    int          rc;
    char        *buf, *arr[4];
    size_t       i, place;
    uint32_t     nc, tc;
    uint8_t     *seen;
    PGresult    *res;
    const char  *params[5];

    if (!cr_ledger_node_valid(node, strlen(node))) {
        snprintf(c->err, sizeof(c->err), "ledger: a bad node name");
        return -1;
    }

    if (n == 0 || n > CR_LEDGER_SCANS_MAX) {
        snprintf(c->err, sizeof(c->err), "ledger: %zu codes in one batch",
                 n);
        return -1;
    }

    buf = cr_ledger_scans_arrays(s, n, arr);
    if (buf == NULL) {
        snprintf(c->err, sizeof(c->err), "ledger: out of memory");
        return -1;
    }

    params[0] = node;
    params[1] = arr[0];
    params[2] = arr[1];
    params[3] = arr[2];
    params[4] = arr[3];

    rc = cr_ledger_run(c, "code_router_scans",
                       "SELECT ord, node_scans, total_scans "
                       "FROM code_router_scans($1::text, $2::text[], "
                       "$3::smallint[], $4::bigint[], $5::bigint[])",
                       params, 5, NULL, deadline_us, (int) n, 3, &res);
    free(buf);

    if (rc != 0) {
        return rc;
    }

    /* Each code answered once: a row this code-router cannot read, or a
     * code answered twice, is the whole batch's error. */
    seen = calloc(n, 1);
    if (seen == NULL) {
        PQclear(res);
        snprintf(c->err, sizeof(c->err), "ledger: out of memory");
        return -1;
    }

    rc = 0;

    for (i = 0; i < n && rc == 0; i++) {
        rc = cr_ledger_parse_scans(PQgetvalue(res, (int) i, 0),
                                   (size_t) PQgetlength(res, (int) i, 0),
                                   PQgetvalue(res, (int) i, 1),
                                   (size_t) PQgetlength(res, (int) i, 1),
                                   PQgetvalue(res, (int) i, 2),
                                   (size_t) PQgetlength(res, (int) i, 2),
                                   n, &place, &nc, &tc);

        if (rc == 0 && seen[place]++) {
            rc = -1;
        }

        if (rc == 0) {
            s[place].node = nc;
            s[place].total = tc;
        }
    }

    free(seen);

    return cr_ledger_parsed(c, res, rc, "code_router_scans");
}


/*
 * The batch as four PostgreSQL array literals (fingerprints in hex, kid,
 * serial, count), in one allocation (returned, the caller's to free):
 * arr[0..3] point into it.  Nothing in them needs quoting.
 */
static char *
cr_ledger_scans_arrays(const cr_ledger_scan_t *s, size_t n, char **arr)
{
    int     k;
    char   *buf, *p;
    size_t  i, j, each[4];

    static const char  hex[] = "0123456789abcdef";

    /* Per code: its digits and a separator; and the braces. */
    each[0] = 2 * CR_LEDGER_FP_LEN + 1;
    each[1] = 4;
    each[2] = 21;
    each[3] = 11;

    buf = malloc(n * (each[0] + each[1] + each[2] + each[3]) + 4 * 3);
    if (buf == NULL) {
        return NULL;
    }

    p = buf;

    for (k = 0; k < 4; k++) {
        arr[k] = p;
        *p++ = '{';

        for (i = 0; i < n; i++) {
            if (i) {
                *p++ = ',';
            }

            switch (k) {
            case 0:
                for (j = 0; j < CR_LEDGER_FP_LEN; j++) {
                    *p++ = hex[s[i].code.fp[j] >> 4];
                    *p++ = hex[s[i].code.fp[j] & 0xf];
                }
                break;
            case 1:
                p += sprintf(p, "%u", s[i].code.kid & 0xff);
                break;
            case 2:
                p += sprintf(p, "%" PRIu64, s[i].code.serial);
                break;
            default:
                p += sprintf(p, "%" PRIu32, s[i].count);
            }
        }

        *p++ = '}';
        *p++ = '\0';
    }

    return buf;
}


int
cr_ledger_parse_scans(const char *ord, size_t ord_len, const char *node,
    size_t node_len, const char *total, size_t total_len, size_t n,
    size_t *place, uint32_t *node_count, uint32_t *total_count)
{
    uint64_t  o, c, t;

    if (ord == NULL || node == NULL || total == NULL) {
        return -1;
    }

    if (cr_ledger_u64(ord, ord_len, n, &o) != 0 || o == 0
        || cr_ledger_u64(node, node_len, UINT32_MAX, &c) != 0
        || cr_ledger_u64(total, total_len, INT64_MAX, &t) != 0
        || t < c)
    {
        return -1;
    }

    *place = (size_t) (o - 1);
    *node_count = (uint32_t) c;
    *total_count = t > UINT32_MAX ? UINT32_MAX : (uint32_t) t;

    return 0;
}


int
cr_ledger_scans_since(cr_ledger_conn_t *c, const char *node,
    int64_t since_us, int64_t deadline_us,
    int (*fn)(void *ctx, const cr_ledger_others_t *one), void *ctx)
{
    int                  rc, i, rows;
    char                 since[32];
    PGresult            *res;
    const char          *params[2];
    cr_ledger_others_t   one;

    if (!cr_ledger_node_valid(node, strlen(node))) {
        snprintf(c->err, sizeof(c->err), "ledger: a bad node name");
        return -1;
    }

    rc = cr_ledger_connect(c, deadline_us);
    if (rc != 0) {
        return rc;
    }

    /* In the database's clock, as a deadline is. */
    cr_ledger_deadline(c, since_us, since, sizeof(since));
    params[0] = node;
    params[1] = since;

    rc = cr_ledger_exec(c, "SELECT fp, kid, serial, others FROM "
                        "code_router_scans_since($1::text, "
                        "$2::double precision)", 2, params, deadline_us,
                        &res);
    if (rc != 0) {
        return rc;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 4) {
        return cr_ledger_result_failed(c, res, "code_router_scans_since");
    }

    rows = PQntuples(res);
    rc = 0;

    for (i = 0; i < rows && rc == 0; i++) {
        if (cr_ledger_parse_others(PQgetvalue(res, i, 0),
                                   (size_t) PQgetlength(res, i, 0),
                                   PQgetvalue(res, i, 1),
                                   (size_t) PQgetlength(res, i, 1),
                                   PQgetvalue(res, i, 2),
                                   (size_t) PQgetlength(res, i, 2),
                                   PQgetvalue(res, i, 3),
                                   (size_t) PQgetlength(res, i, 3), &one)
            != 0)
        {
            return cr_ledger_parsed(c, res, -1, "code_router_scans_since");
        }

        rc = fn(ctx, &one);
    }

    PQclear(res);

    return rc;
}


int
cr_ledger_receive(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    const char *store, const char *dealer, int64_t deadline_us,
    cr_ledger_receipt_t *out)
{
    int          rc, tries;
    char         fp[2 + 2 * CR_LEDGER_FP_LEN + 1], kid[8], serial[24];
    PGresult    *res;
    const char  *params[5];

    cr_ledger_params(code, fp, kid, serial);
    params[0] = fp;
    params[1] = kid;
    params[2] = serial;
    params[3] = store;
    params[4] = dealer;

    /* No row: another node's first receipt, committed after this
     * statement's snapshot; the next statement sees it. */
    res = NULL;

    for (tries = 0; tries < 2; tries++) {
        rc = cr_ledger_run(c, "code_router_receive", "SELECT fresh, store, "
                           "dealer, at FROM code_router_receive($1::bytea, "
                           "$2::smallint, $3::bigint, $4::text, $5::text)",
                           params, 5, NULL, deadline_us, -1, 4, &res);
        if (rc != 0) {
            return rc;
        }

        if (PQntuples(res) == 1) {
            break;
        }

        PQclear(res);
        res = NULL;
    }

    if (res == NULL) {
        snprintf(c->err, sizeof(c->err), "ledger: code_router_receive "
                 "gave no receipt twice");
        return -1;
    }

    if (cr_ledger_parse_receipt(PQgetvalue(res, 0, 1),
                                (size_t) PQgetlength(res, 0, 1),
                                PQgetvalue(res, 0, 2),
                                (size_t) PQgetlength(res, 0, 2),
                                PQgetvalue(res, 0, 3),
                                (size_t) PQgetlength(res, 0, 3), out)
        != 0)
    {
        return cr_ledger_parsed(c, res, -1, "code_router_receive");
    }

    out->fresh = PQgetvalue(res, 0, 0)[0] == 't';
    out->code = *code;
    PQclear(res);

    return 0;
}


int
cr_ledger_receipts_since(cr_ledger_conn_t *c, int64_t since_us,
    int64_t deadline_us,
    int (*fn)(void *ctx, const cr_ledger_receipt_t *one), void *ctx)
{
    int                   rc, i, rows;
    char                  since[32];
    PGresult             *res;
    const char           *params[1];
    cr_ledger_others_t    o;
    cr_ledger_receipt_t   one;

    rc = cr_ledger_connect(c, deadline_us);
    if (rc != 0) {
        return rc;
    }

    cr_ledger_deadline(c, since_us, since, sizeof(since));
    params[0] = since;

    rc = cr_ledger_exec(c, "SELECT fp, kid, serial, store, dealer, at FROM "
                        "code_router_receipts_since($1::double precision)",
                        1, params, deadline_us, &res);
    if (rc != 0) {
        return rc;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 6) {
        return cr_ledger_result_failed(c, res, "code_router_receipts_since");
    }

    rows = PQntuples(res);
    rc = 0;

    for (i = 0; i < rows && rc == 0; i++) {
        /* fp, kid, serial as the scans' rows (a count of 0). */
        if (cr_ledger_parse_others(PQgetvalue(res, i, 0),
                                   (size_t) PQgetlength(res, i, 0),
                                   PQgetvalue(res, i, 1),
                                   (size_t) PQgetlength(res, i, 1),
                                   PQgetvalue(res, i, 2),
                                   (size_t) PQgetlength(res, i, 2), "0", 1,
                                   &o) != 0
            || cr_ledger_parse_receipt(PQgetvalue(res, i, 3),
                                       (size_t) PQgetlength(res, i, 3),
                                       PQgetvalue(res, i, 4),
                                       (size_t) PQgetlength(res, i, 4),
                                       PQgetvalue(res, i, 5),
                                       (size_t) PQgetlength(res, i, 5), &one)
               != 0)
        {
            return cr_ledger_parsed(c, res, -1,
                                    "code_router_receipts_since");
        }

        one.code = o.code;
        one.fresh = 0;
        rc = fn(ctx, &one);
    }

    PQclear(res);

    return rc;
}


int
cr_ledger_parse_receipt(const char *store, size_t store_len,
    const char *dealer, size_t dealer_len, const char *at, size_t at_len,
    cr_ledger_receipt_t *one)
{
    uint64_t  t;

    if (store == NULL || dealer == NULL || at == NULL
        || store_len == 0 || store_len > CR_LEDGER_ID_MAX
        || dealer_len > CR_LEDGER_ID_MAX
        || !cr_ledger_name_valid(store, store_len, CR_LEDGER_ID_MAX, "._-")
        || (dealer_len
            && !cr_ledger_name_valid(dealer, dealer_len, CR_LEDGER_ID_MAX,
                                     "._-"))
        || cr_ledger_u64(at, at_len, INT64_MAX, &t) != 0)
    {
        return -1;
    }

    memcpy(one->store, store, store_len);
    one->store[store_len] = '\0';
    memcpy(one->dealer, dealer, dealer_len);
    one->dealer[dealer_len] = '\0';
    one->at = (int64_t) t;

    return 0;
}


int
cr_ledger_parse_others(const char *fp, size_t fp_len, const char *kid,
    size_t kid_len, const char *serial, size_t serial_len,
    const char *others, size_t others_len, cr_ledger_others_t *one)
{
    int       hi, lo;
    size_t    i;
    uint64_t  k, s, o;

    if (fp == NULL || kid == NULL || serial == NULL || others == NULL
        || fp_len != 2 * CR_LEDGER_FP_LEN
        || cr_ledger_u64(kid, kid_len, 255, &k) != 0
        || cr_ledger_u64(serial, serial_len, (1ULL << 40) - 1, &s) != 0
        || cr_ledger_u64(others, others_len, INT64_MAX, &o) != 0)
    {
        return -1;
    }

    for (i = 0; i < CR_LEDGER_FP_LEN; i++) {
        hi = cr_ledger_hex(fp[2 * i]);
        lo = cr_ledger_hex(fp[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        one->code.fp[i] = (uint8_t) (hi << 4 | lo);
    }

    one->code.kid = (unsigned) k;
    one->code.serial = s;
    one->others = o > UINT32_MAX ? UINT32_MAX : (uint32_t) o;

    return 0;
}


/* A lower-case hex digit's value (encode() writes lower case), or -1. */
static int
cr_ledger_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


int
cr_ledger_show_scans(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    int64_t deadline_us, cr_ledger_scans_record_t *rec)
{
    int          rc, i, rows;
    size_t       len;
    uint64_t     v;
    PGresult    *res;

    memset(rec, 0, sizeof(cr_ledger_scans_record_t));

    rc = cr_ledger_code_query(c, code, "SELECT node, count "
                              "FROM code_router_scan_counts "
                              "WHERE fp = $1::bytea AND kid = $2::smallint "
                              "AND serial = $3::bigint ORDER BY node",
                              deadline_us, &res);
    if (rc != 0) {
        return rc;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 2) {
        return cr_ledger_result_failed(c, res, "show");
    }

    rows = PQntuples(res);

    for (i = 0; i < rows; i++) {
        len = (size_t) PQgetlength(res, i, 0);

        if (!cr_ledger_node_valid(PQgetvalue(res, i, 0), len)
            || cr_ledger_u64(PQgetvalue(res, i, 1),
                             (size_t) PQgetlength(res, i, 1), UINT32_MAX, &v)
               != 0)
        {
            PQclear(res);
            snprintf(c->err, sizeof(c->err), "ledger: show: a scan count "
                     "this code-router cannot read");
            return -1;
        }

        rec->total += v;

        if (i < CR_LEDGER_NODES_SHOWN) {
            memcpy(rec->name[i], PQgetvalue(res, i, 0), len);
            rec->name[i][len] = '\0';
            rec->count[i] = v;
        }
    }

    rec->nodes = (size_t) rows;
    PQclear(res);

    return 0;
}


int
cr_ledger_node_valid(const char *s, size_t n)
{
    return cr_ledger_name_valid(s, n, CR_LEDGER_NODE_MAX, ".");
}


int
cr_ledger_init(cr_ledger_conn_t *c, int64_t deadline_us, int *from)
{
    int          rc, version;
    uint64_t     v;
    PGresult    *res;

    *from = 0;

    /* Connected without the schema check (there may be no schema). */
    if (c->pg == NULL) {
        rc = cr_ledger_connect(c, -deadline_us);
        if (rc != 0) {
            return rc;
        }
    }

    rc = cr_ledger_exec(c, "BEGIN; SELECT pg_advisory_xact_lock("
                        "7232401234567)", 0, NULL, deadline_us, &res);
    if (rc != 0) {
        return rc;
    }

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        return cr_ledger_result_failed(c, res, "init: lock");
    }

    PQclear(res);

    rc = cr_ledger_exec(c, "SELECT value FROM code_router_meta "
                        "WHERE name = 'schema_version' AND "
                        "to_regclass('code_router_meta') IS NOT NULL",
                        0, NULL, deadline_us, &res);
    if (rc != 0) {
        return rc;
    }

    version = 0;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        if (cr_ledger_u64(PQgetvalue(res, 0, 0),
                          (size_t) PQgetlength(res, 0, 0), 1000, &v)
            != 0)
        {
            PQclear(res);
            snprintf(c->err, sizeof(c->err), "ledger: code_router_meta "
                     "holds a schema_version that is not a number");
            cr_ledger_drop(c);
            return -1;
        }

        version = (int) v;
        PQclear(res);

    } else if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        PQclear(res);

    } else {
        /* No code_router_meta yet: a new database.  The failed
         * statement aborted the transaction; begin again. */
        PQclear(res);
        rc = cr_ledger_exec(c, "ROLLBACK; BEGIN; SELECT "
                            "pg_advisory_xact_lock(7232401234567)", 0, NULL,
                            deadline_us, &res);
        if (rc != 0) {
            return rc;
        }

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            return cr_ledger_result_failed(c, res, "init: lock");
        }

        PQclear(res);
    }

    *from = version;

    if (version > CR_LEDGER_SCHEMA) {
        snprintf(c->err, sizeof(c->err), "ledger: the schema has version "
                 "%d, this code-router knows %d at most: upgrade "
                 "code-router", version, CR_LEDGER_SCHEMA);
        cr_ledger_drop(c);
        return -1;
    }

    for (version = version + 1; version <= CR_LEDGER_SCHEMA; version++) {
        rc = cr_ledger_exec(c, cr_ledger_upgrades[version], 0, NULL,
                            deadline_us, &res);
        if (rc != 0) {
            return rc;
        }

        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            return cr_ledger_result_failed(c, res, "init");
        }

        PQclear(res);
    }

    rc = cr_ledger_exec(c, "COMMIT", 0, NULL, deadline_us, &res);
    if (rc != 0) {
        return rc;
    }

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        return cr_ledger_result_failed(c, res, "init: commit");
    }

    PQclear(res);

    return 0;
}


int
cr_ledger_request_valid(const char *s, size_t n)
{
    return cr_ledger_name_valid(s, n, CR_LEDGER_REQUEST_MAX, "");
}


/* 1 to max bytes of [0-9A-Za-z_-] and the bytes of more. */
static int
cr_ledger_name_valid(const char *s, size_t n, size_t max, const char *more)
{
    size_t  i;

    if (n == 0 || n > max) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'
              || s[i] == '-' || (s[i] != '\0' && strchr(more, s[i]))))
        {
            return 0;
        }
    }

    return 1;
}


int
cr_ledger_parse_answer(const char *outcome, size_t outcome_len,
    const char *count, size_t count_len, const char *first,
    size_t first_len, cr_ledger_answer_t *a)
{
    int       i;
    uint64_t  n, f;

    /* By cr_ledger_outcome_e. */
    static const char *const  names[] = {
        "counted", "replayed", "late", NULL
    };

    if (outcome == NULL || count == NULL || first == NULL) {
        return -1;
    }

    i = cr_ledger_outcome(outcome, outcome_len, names);

    if (i < 0) {
        return -1;
    }

    if (cr_ledger_u64(count, count_len, UINT32_MAX, &n) != 0
        || cr_ledger_u64(first, first_len, INT64_MAX, &f) != 0)
    {
        return -1;
    }

    /* A counted or replayed answer is a verification that happened. */
    if (i != CR_LEDGER_LATE && (n == 0 || f == 0)) {
        return -1;
    }

    a->outcome = (cr_ledger_outcome_e) i;
    a->count = (uint32_t) n;
    a->first = (int64_t) f;

    return 0;
}


int64_t
cr_ledger_now_us(void)
{
    struct timeval  tv;

    (void) gettimeofday(&tv, NULL);

    return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}


/* sql about code ($1 fp, $2 kid, $3 serial), connected if need be:
 * 0 and *res (the caller's to PQclear), CR_LEDGER_TIMEOUT or -1. */
static int
cr_ledger_code_query(cr_ledger_conn_t *c, const cr_ledger_code_t *code,
    const char *sql, int64_t deadline_us, PGresult **res)
{
    int          rc;
    char         fp[2 + 2 * CR_LEDGER_FP_LEN + 1], kid[8], serial[24];
    const char  *params[3];

    rc = cr_ledger_connect(c, deadline_us);
    if (rc != 0) {
        return rc;
    }

    cr_ledger_params(code, fp, kid, serial);
    params[0] = fp;
    params[1] = kid;
    params[2] = serial;

    return cr_ledger_exec(c, sql, 3, params, deadline_us, res);
}


/*
 * One call of a schema function fn about code under request id:
 * parameters $1 fp, $2 kid, $3 serial, $4 request, $5 the deadline (in
 * the database's clock) and, if extra is not NULL, $6 extra.  0 and
 * *res, one row of ncols (the caller's to PQclear), or
 * CR_LEDGER_TIMEOUT or -1.
 */
static int
cr_ledger_call(cr_ledger_conn_t *c, const char *fn, const char *sql,
    const cr_ledger_code_t *code, const char *request, const char *extra,
    int64_t deadline_us, int ncols, PGresult **res)
{
    char         fp[2 + 2 * CR_LEDGER_FP_LEN + 1], kid[8], serial[24];
    char         deadline[32];
    const char  *params[6];

    if (!cr_ledger_request_valid(request, strlen(request))) {
        snprintf(c->err, sizeof(c->err), "ledger: a bad request id");
        return -1;
    }

    cr_ledger_params(code, fp, kid, serial);

    params[0] = fp;
    params[1] = kid;
    params[2] = serial;
    params[3] = request;
    params[4] = deadline;
    params[5] = extra;

    return cr_ledger_run(c, fn, sql, params, extra ? 6 : 5, deadline,
                         deadline_us, 1, ncols, res);
}


/*
 * Runs sql with n text parameters, one of them (the buffer deadline, of
 * 32 bytes; or NULL: none) the deadline in the database's clock, written
 * once connected: 0 and *res, rows rows of ncols (the caller's to
 * PQclear), or CR_LEDGER_TIMEOUT or -1.
 */
static int
cr_ledger_run(cr_ledger_conn_t *c, const char *fn, const char *sql,
    const char *const *params, int n, char *deadline, int64_t deadline_us,
    int rows, int ncols, PGresult **res)
{
    int  rc, reused, tries;

    /* A connection kept from before may have been closed by the server
     * meanwhile (a restart, a failover, an idle timeout): its failure is
     * tried once more on a new one.  Safe: a verification or redemption
     * is idempotent per request id (the first may have run; the retry
     * replays it), scan counts are kept by maximum; a guard's wrong PIN
     * may then count twice, never less. */
    for (tries = 0; /* void */; tries++) {
        reused = (c->pg != NULL);

        rc = cr_ledger_connect(c, deadline_us);
        if (rc != 0) {
            return rc;
        }

        if (deadline) {
            cr_ledger_deadline(c, deadline_us, deadline, 32);
        }

        rc = cr_ledger_exec(c, sql, n, params, deadline_us, res);

        if (rc == -1 && reused && tries == 0) {
            continue;
        }

        if (rc != 0) {
            return rc;
        }

        break;
    }

    /* rows -1: any number (code_router_receive's 0 is asked again). */
    if (PQresultStatus(*res) != PGRES_TUPLES_OK
        || (rows >= 0 && PQntuples(*res) != rows)
        || PQnfields(*res) != ncols)
    {
        return cr_ledger_result_failed(c, *res, fn);
    }

    return 0;
}


/* After the parse of fn's row (rc): res cleared, and a row that does
 * not parse is an error (a schema this code-router does not know). */
static int
cr_ledger_parsed(cr_ledger_conn_t *c, PGresult *res, int rc,
    const char *fn)
{
    PQclear(res);

    if (rc != 0) {
        snprintf(c->err, sizeof(c->err), "ledger: %s answered a row this "
                 "code-router cannot read (another schema? code-router "
                 "ledger init upgrades it)", fn);
        return -1;
    }

    return 0;
}


/*
 * Connects within the deadline, unless connected: then the schema's
 * version is checked, statement_timeout set (the server gives up too)
 * and the clocks' offset measured.  deadline_us < 0: -deadline_us, and
 * no schema check (ledger init).
 */
static int
cr_ledger_connect(cr_ledger_conn_t *c, int64_t deadline_us)
{
    int                    rc, check;
    char                   timeout[24];
    int64_t                t0, t1;
    uint64_t               version, db_us;
    PGresult              *res;
    const char            *params[1];
    PostgresPollingStatusType  st;

    static const char *const  keys[] = { "dbname", NULL };

    if (c->pg) {
        return 0;
    }

    check = (deadline_us >= 0);
    if (!check) {
        deadline_us = -deadline_us;
    }

    {
        const char *const  values[] = { c->conninfo, NULL };

        c->pg = PQconnectStartParams(keys, values, 1);
    }

    if (c->pg == NULL) {
        snprintf(c->err, sizeof(c->err), "ledger: out of memory");
        return -1;
    }

    if (PQstatus(c->pg) == CONNECTION_BAD) {
        cr_ledger_fail(c, "connect", PQerrorMessage(c->pg));
        cr_ledger_drop(c);
        return -1;
    }

    st = PGRES_POLLING_WRITING;

    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            cr_ledger_fail(c, "connect", PQerrorMessage(c->pg));
            cr_ledger_drop(c);
            return -1;
        }

        rc = cr_ledger_wait(c, st == PGRES_POLLING_READING ? POLLIN
                                                           : POLLOUT,
                            deadline_us);
        if (rc != 0) {
            return rc;
        }

        st = PQconnectPoll(c->pg);
    }

    if (PQsetnonblocking(c->pg, 1) != 0) {
        cr_ledger_fail(c, "connect", PQerrorMessage(c->pg));
        cr_ledger_drop(c);
        return -1;
    }

    if (!check) {
        return 0;
    }

    /* The server stops a statement at most as late as we give up. */
    snprintf(timeout, sizeof(timeout), "%u", c->timeout_ms);
    params[0] = timeout;

    t0 = cr_ledger_now_us();

    rc = cr_ledger_exec(c, "SELECT set_config('statement_timeout', $1, "
                        "false), (SELECT value FROM code_router_meta "
                        "WHERE name = 'schema_version'), "
                        "floor(extract(epoch FROM clock_timestamp()) "
                        "* 1000000)::bigint", 1, params, deadline_us, &res);
    if (rc != 0) {
        return rc;
    }

    t1 = cr_ledger_now_us();

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        cr_ledger_fail(c, "no schema (run \"code-router ledger init --pg "
                       "CONNINFO\")", PQresultErrorMessage(res));
        PQclear(res);
        cr_ledger_drop(c);
        return -1;
    }

    if (PQgetisnull(res, 0, 1)
        || cr_ledger_u64(PQgetvalue(res, 0, 1),
                         (size_t) PQgetlength(res, 0, 1), 1000, &version)
           != 0
        || version != CR_LEDGER_SCHEMA
        || cr_ledger_u64(PQgetvalue(res, 0, 2),
                         (size_t) PQgetlength(res, 0, 2), INT64_MAX, &db_us)
           != 0)
    {
        snprintf(c->err, sizeof(c->err), "ledger: the schema is version "
                 "\"%s\", this code-router needs %d: run \"code-router "
                 "ledger init --pg CONNINFO\"",
                 PQgetisnull(res, 0, 1) ? "none" : PQgetvalue(res, 0, 1),
                 CR_LEDGER_SCHEMA);
        PQclear(res);
        cr_ledger_drop(c);
        return -1;
    }

    PQclear(res);

    /* The server read its clock about halfway through the exchange. */
    c->offset_us = (int64_t) db_us - (t0 + (t1 - t0) / 2);

    return 0;
}


static void
cr_ledger_drop(cr_ledger_conn_t *c)
{
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
}


/* Waits for the socket until the deadline: 0, CR_LEDGER_TIMEOUT or -1;
 * on either failure the connection is dropped. */
static int
cr_ledger_wait(cr_ledger_conn_t *c, short events, int64_t deadline_us)
{
    int            rc;
    int64_t        ms;
    struct pollfd  pfd;

    for ( ;; ) {
        ms = (deadline_us - cr_ledger_now_us() + 999) / 1000;

        if (ms <= 0) {
            snprintf(c->err, sizeof(c->err), "ledger: no answer within "
                     "the timeout");
            cr_ledger_drop(c);
            return CR_LEDGER_TIMEOUT;
        }

        pfd.fd = PQsocket(c->pg);
        pfd.events = events;
        pfd.revents = 0;

        if (pfd.fd < 0) {
            cr_ledger_fail(c, "no socket", PQerrorMessage(c->pg));
            cr_ledger_drop(c);
            return -1;
        }

        rc = poll(&pfd, 1, ms > 60000 ? 60000 : (int) ms);

        if (rc > 0) {
            return 0;
        }

        if (rc < 0 && errno != EINTR) {
            snprintf(c->err, sizeof(c->err), "ledger: poll: %s",
                     strerror(errno));
            cr_ledger_drop(c);
            return -1;
        }
    }
}


/*
 * Sends sql (with n text parameters) and waits for its last result,
 * within the deadline: 0 and *res (the caller's to PQclear), or
 * CR_LEDGER_TIMEOUT or -1 with the connection dropped.  A script of
 * several statements (no parameters) answers its last statement's
 * result; an error stops it.
 */
static int
cr_ledger_exec(cr_ledger_conn_t *c, const char *sql, int n,
    const char *const *params, int64_t deadline_us, PGresult **res)
{
    int        rc, sent;
    PGresult  *r, *last;

    *res = NULL;

    sent = (n == 0) ? PQsendQuery(c->pg, sql)
                    : PQsendQueryParams(c->pg, sql, n, NULL, params, NULL,
                                        NULL, 0);
    if (!sent) {
        cr_ledger_fail(c, "send", PQerrorMessage(c->pg));
        cr_ledger_drop(c);
        return -1;
    }

    while ((rc = PQflush(c->pg)) == 1) {
        rc = cr_ledger_wait(c, POLLOUT | POLLIN, deadline_us);
        if (rc != 0) {
            return rc;
        }

        if (!PQconsumeInput(c->pg)) {
            break;
        }
    }

    if (rc == -1) {
        cr_ledger_fail(c, "send", PQerrorMessage(c->pg));
        cr_ledger_drop(c);
        return -1;
    }

    last = NULL;

    for ( ;; ) {
        while (PQisBusy(c->pg)) {
            rc = cr_ledger_wait(c, POLLIN, deadline_us);
            if (rc != 0) {
                PQclear(last);
                return rc;
            }

            if (!PQconsumeInput(c->pg)) {
                cr_ledger_fail(c, "receive", PQerrorMessage(c->pg));
                PQclear(last);
                cr_ledger_drop(c);
                return -1;
            }
        }

        r = PQgetResult(c->pg);
        if (r == NULL) {
            break;
        }

        /* The first error of a script is its answer. */
        if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(r);
            continue;
        }

        PQclear(last);
        last = r;
    }

    if (last == NULL) {
        cr_ledger_fail(c, "no result", PQerrorMessage(c->pg));
        cr_ledger_drop(c);
        return -1;
    }

    *res = last;

    return 0;
}


/* A statement that failed: the server's message, and a fresh connection
 * next time (a connection in a failed transaction, or one that answered
 * nonsense, is not reused). */
static int
cr_ledger_result_failed(cr_ledger_conn_t *c, PGresult *res,
    const char *what)
{
    const char  *msg;

    msg = PQresultErrorMessage(res);
    cr_ledger_fail(c, what, (msg && *msg) ? msg : "an unexpected answer");

    PQclear(res);
    cr_ledger_drop(c);

    return -1;
}


/* A decimal of 1 to 20 digits, at most max. */
static int
cr_ledger_u64(const char *s, size_t n, uint64_t max, uint64_t *v)
{
    size_t    i;
    uint64_t  x;

    if (n == 0 || n > 20) {
        return -1;
    }

    x = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        /* x * 10 + digit <= max, for any max (a batch's size too). */
        if (x > max / 10
            || (x == max / 10 && (uint64_t) (s[i] - '0') > max % 10))
        {
            return -1;
        }

        x = x * 10 + (uint64_t) (s[i] - '0');
    }

    *v = x;

    return 0;
}


/* The index of s[0..n) in names (NULL-terminated), or -1. */
static int
cr_ledger_outcome(const char *s, size_t n, const char *const *names)
{
    int  i;

    for (i = 0; names[i]; i++) {
        if (n == strlen(names[i]) && memcmp(s, names[i], n) == 0) {
            return i;
        }
    }

    return -1;
}


/* The key of a code as text parameters: bytea hex, kid, serial. */
static void
cr_ledger_params(const cr_ledger_code_t *code, char *fp, char *kid,
    char *serial)
{
    int  i;

    static const char  hex[] = "0123456789abcdef";

    fp[0] = '\\';
    fp[1] = 'x';

    for (i = 0; i < CR_LEDGER_FP_LEN; i++) {
        fp[2 + 2 * i] = hex[code->fp[i] >> 4];
        fp[3 + 2 * i] = hex[code->fp[i] & 0xf];
    }

    fp[2 + 2 * CR_LEDGER_FP_LEN] = '\0';

    snprintf(kid, 8, "%u", code->kid);
    snprintf(serial, 24, "%" PRIu64, code->serial);
}


/* "ledger: what: msg" into c->err, libpq's newlines (its messages end
 * with one, and have a DETAIL line) made spaces: one log line. */
static void
cr_ledger_fail(cr_ledger_conn_t *c, const char *what, const char *msg)
{
    char  *p;
    size_t n;

    snprintf(c->err, sizeof(c->err), "ledger: %s: %s", what,
             msg ? msg : "");

    for (p = c->err; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }

    n = strlen(c->err);

    while (n && c->err[n - 1] == ' ') {
        c->err[--n] = '\0';
    }
}


/* The deadline in the database's clock: seconds, to the microsecond. */
static void
cr_ledger_deadline(cr_ledger_conn_t *c, int64_t deadline_us, char *out,
    size_t size)
{
    int64_t  t;

    t = deadline_us + c->offset_us;

    snprintf(out, size, "%" PRId64 ".%06" PRId64, t / 1000000,
             t % 1000000);
}
