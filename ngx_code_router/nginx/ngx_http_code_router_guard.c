/*
 * The PIN guard: the wrong-PIN records of code_router_pin_guard's shared
 * zone (per code and address, per code; two trees, each its own share of
 * the zone, codes' records in LRU order), the policy of cr_guard around
 * each PIN check in one critical section, the verdicts' table and
 * counts, and the zone's metrics.
 *
 * With code_router_ledger the budget is the ledger's, global: a check
 * the zone admits is sent there (cr_ledger_guard) before its verdict is
 * said, and the ledger's records come back into the zone (guard_fold),
 * so that a lock learnt from the ledger is answered here at once.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include "cr_pin.h"
#include "ngx_http_code_router.h"


/* fp | kid | serial BE40 (a code's budget), then an address (the
 * client): its kind and up to 8 bytes (an IPv4 address, an IPv6 /64, a
 * buyer's hash). */
#define CR_GUARD_CLIENT_LEN   (1 + 8)
#define CR_GUARD_ID_LEN       (CR_SCANS_FP_LEN + 1 + 5 + CR_GUARD_CLIENT_LEN)

/* A full zone looks at this many codes' records, least recently spent
 * first, for one whose bucket is full again (it says what no record
 * says). */
#define CR_GUARD_SCAN         8

/* A full zone answers "locked": say so, at most this often. */
#define CR_GUARD_FULL_LOG_S   60


/* The guard zone's two kinds of record, each with its own tree and its
 * own share of the zone, so that a flood of one never crowds out the
 * other. */
typedef enum {
    CR_GUARD_CODE = 0,                  /* a code's budget */
    CR_GUARD_ADDR,                      /* a (code, address) record */
    CR_GUARD_KINDS
} ngx_http_code_router_guard_kind_e;

typedef struct {
    ngx_rbtree_t                  rbtree[CR_GUARD_KINDS];
    ngx_rbtree_node_t             sentinel[CR_GUARD_KINDS];
    ngx_queue_t                   lru;          /* codes, least recently
                                                 * spent last */
    ngx_atomic_t                  room[CR_GUARD_KINDS];  /* records that
                                                 * may still be made */
    u_char                        buyer_key[CR_GUARD_BUYER_KEY_LEN];
    time_t                        full_logged;
    ngx_atomic_t                  outcome[CR_VER_N];
    ngx_atomic_t                  records;
    ngx_atomic_t                  evicted;      /* full buckets dropped */
    ngx_atomic_t                  full;         /* locked: no room */
} ngx_http_code_router_guard_sh_t;

typedef struct {
    ngx_str_node_t                sn;           /* key: a hash of id;
                                                 * str: id */
    ngx_queue_t                   lru;          /* codes only */
    u_char                        id[CR_GUARD_ID_LEN];  /* zero-padded */
    union {
        cr_guard_addr_t           addr;
        cr_guard_code_t           code;
    } u;
} ngx_http_code_router_guard_node_t;

/* The slab allocator gives a record a 128-byte slot (docs/verify.md and
 * README say so): 32 to a 4 KB page. */
#define CR_GUARD_SLOT         128

_Static_assert(CR_GUARD_BUYER_KEY_LEN == CR_SUBKEY_LEN,
               "a ledger's buyer key is derived from a brand's k_addr");

#if (NGX_PTR_SIZE == 8)
_Static_assert(sizeof(ngx_http_code_router_guard_node_t) > CR_GUARD_SLOT / 2
               && sizeof(ngx_http_code_router_guard_node_t) <= CR_GUARD_SLOT,
               "a guard record takes a 128-byte slab slot");
#endif

typedef struct {
    ngx_slab_pool_t                  *shpool;
    ngx_http_code_router_guard_sh_t  *sh;
    cr_keyring_t                     *brand;    /* configuration: the
                                                 * first verify's keys */
    ngx_uint_t                        shared;   /* ... and another's */
} ngx_http_code_router_guard_t;


static void ngx_http_code_router_guard_id(ngx_http_request_t *r,
    ngx_http_code_router_guard_t *g, ngx_str_t *buyer,
    ngx_http_code_router_decision_t *d, u_char *code_id, u_char *addr_id);
static void ngx_http_code_router_guard_client(ngx_http_request_t *r,
    ngx_http_code_router_guard_t *g, ngx_str_t *buyer, u_char *client);
static ngx_http_code_router_guard_node_t *ngx_http_code_router_guard_find(
    ngx_http_code_router_guard_t *g, ngx_uint_t kind, u_char *id);
static ngx_http_code_router_guard_node_t *ngx_http_code_router_guard_make(
    ngx_http_code_router_guard_t *g, ngx_uint_t kind, u_char *id, time_t now);
static void ngx_http_code_router_guard_drop(ngx_http_code_router_guard_t *g,
    ngx_uint_t kind, ngx_http_code_router_guard_node_t *gn);
static ngx_int_t ngx_http_code_router_guard_init(ngx_shm_zone_t *shm_zone,
    void *data);


const ngx_http_code_router_verdict_t
    ngx_http_code_router_verdicts[CR_VER_N] =
{
    [CR_VER_NONE] = { ngx_string(""), NGX_HTTP_OK },            /* the form */
    [CR_VER_GENUINE] = { ngx_string("genuine"), NGX_HTTP_OK },
    [CR_VER_VERIFIED_BEFORE] = { ngx_string("verified_before"),
                                 NGX_HTTP_OK },
    [CR_VER_WRONG_PIN] = { ngx_string("wrong_pin"), NGX_HTTP_FORBIDDEN },
    [CR_VER_LOCKED] = { ngx_string("locked"), NGX_HTTP_TOO_MANY_REQUESTS },
    [CR_VER_MALFORMED_PIN] = { ngx_string("malformed_pin"),
                               NGX_HTTP_BAD_REQUEST }
};


static const cr_guard_policy_t  ngx_http_code_router_policy =
    CR_GUARD_DEFAULT;


/*
 * The policy (cr_guard) around the PIN check, in one critical section of
 * the guard zone, so that two workers cannot both let a locked address
 * through.  Before the PIN is looked at, the zone must have room for what
 * a wrong one records: a check that could not be counted would be a free
 * guess.  Returns CR_VER_GENUINE for a right PIN (its count is the
 * caller's), CR_VER_WRONG_PIN or CR_VER_LOCKED with *retry set.  global:
 * the ledger records the check (guard_ask, guard_fold), not this.
 */
ngx_http_code_router_ver_e
ngx_http_code_router_guard_check(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *buyer, const u_char *pin,
    size_t len, ngx_uint_t global, int64_t *retry)
{
    time_t                              now;
    int64_t                             token;
    cr_pin_rc_t                         prc;
    cr_guard_addr_t                     clean;
    cr_guard_code_t                     full;
    ngx_http_code_router_ver_e          ver;
    ngx_http_code_router_guard_t       *g;
    ngx_http_code_router_srv_conf_t    *crscf;
    ngx_http_code_router_loc_conf_t    *crlcf;
    ngx_http_code_router_guard_node_t  *cn, *an;

    u_char                              code_id[CR_GUARD_ID_LEN];
    u_char                              addr_id[CR_GUARD_ID_LEN];

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    g = crscf->guard->data;

    ngx_http_code_router_guard_id(r, g, buyer, d, code_id, addr_id);
    ngx_memzero(&clean, sizeof(clean));
    ngx_memzero(&full, sizeof(full));
    now = ngx_time();
    *retry = 0;

    ngx_shmtx_lock(&g->shpool->mutex);

    cn = ngx_http_code_router_guard_find(g, CR_GUARD_CODE, code_id);
    an = ngx_http_code_router_guard_find(g, CR_GUARD_ADDR, addr_id);

    *retry = cr_guard_admit(&ngx_http_code_router_policy,
                            an ? &an->u.addr : &clean,
                            cn ? &cn->u.code : &full, now);
    if (*retry) {
        ver = CR_VER_LOCKED;
        goto done;
    }

    if (cn == NULL) {
        cn = ngx_http_code_router_guard_make(g, CR_GUARD_CODE, code_id, now);
        if (cn == NULL) {
            *retry = now + ngx_http_code_router_policy.interval;
            goto full;
        }
    }

    if (an == NULL) {
        /* With a ledger the record is made from its answer (guard_fold):
         * a check it never answers leaves none. */
        if (!global) {
            an = ngx_http_code_router_guard_make(g, CR_GUARD_ADDR, addr_id,
                                                 now);
        }

        /* Without room for a new address's record, its wrong PIN is
         * still counted by the code's budget; under pressure it would be
         * a fresh budget: never. */
        token = cr_guard_code_next(&ngx_http_code_router_policy,
                                   &cn->u.code);
        if ((global ? g->sh->room[CR_GUARD_ADDR] == 0 : an == NULL)
            && token > now)
        {
            *retry = token;
            goto full;
        }
    }

    prc = cr_pin_check(&crscf->ring->keys[d->kid], d->serial,
                       crlcf->verify.digits, (const char *) pin, len);

    if (global) {
        ver = (prc == CR_PIN_OK) ? CR_VER_GENUINE : CR_VER_WRONG_PIN;
        goto done;
    }

    if (prc == CR_PIN_OK) {
        /* A cleared record and a full bucket say what none says. */
        if (an) {
            ngx_http_code_router_guard_drop(g, CR_GUARD_ADDR, an);
        }

        if (!cr_guard_code_kept(&cn->u.code, now)) {
            ngx_http_code_router_guard_drop(g, CR_GUARD_CODE, cn);
        }

        ver = CR_VER_GENUINE;
        goto done;
    }

    /* Wrong (or fail closed): counted for both. */
    ver = CR_VER_WRONG_PIN;

    *retry = cr_guard_wrong(&ngx_http_code_router_policy,
                            an ? &an->u.addr : &clean, &cn->u.code, now);

    ngx_queue_remove(&cn->lru);
    ngx_queue_insert_head(&g->sh->lru, &cn->lru);

    goto done;

full:

    ver = CR_VER_LOCKED;
    (void) ngx_atomic_fetch_add(&g->sh->full, 1);

    if (now - g->sh->full_logged >= CR_GUARD_FULL_LOG_S) {
        g->sh->full_logged = now;
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "code router: the PIN guard zone \"%V\" is full "
                      "(every record limits a guess); new %s answered "
                      "\"locked\" (a bigger zone: docs/verify.md)",
                      &crscf->guard->shm.name,
                      (an == NULL && cn) ? "addresses on codes under "
                                           "pressure are"
                                         : "codes are");
    }

done:

    ngx_shmtx_unlock(&g->shpool->mutex);

    return ver;
}

/*
 * With code_router_ledger: the check that guard_check admitted (its PIN
 * right or not, not said) to the ledger, whose answer goes to done.
 * NGX_DONE, or NGX_DECLINED (answer "unavailable").
 */
ngx_int_t
ngx_http_code_router_guard_ask(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *buyer, ngx_uint_t right,
    ngx_http_code_router_ledger_guarded_pt done)
{
    u_char                            client[CR_GUARD_CLIENT_LEN];
    ngx_http_code_router_srv_conf_t  *crscf;

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    ngx_memzero(client, sizeof(client));
    ngx_http_code_router_guard_client(r, crscf->guard->data, buyer, client);

    /* A buyer is one record in the ledger: hashed under the brand's key,
     * the same on every node, not the zone's own. */
    if (buyer->len) {
        u_char  key[CR_GUARD_BUYER_KEY_LEN];

        cr_guard_buyer_key_of(key, crscf->ring->keys[d->kid].k_addr);
        cr_guard_buyer(&client[1], key, (const char *) buyer->data,
                       buyer->len);
        sodium_memzero(key, sizeof(key));
    }

    return ngx_http_code_router_ledger_guard(r, d, client, sizeof(client),
                                             right,
                                             &ngx_http_code_router_policy,
                                             done);
}


/*
 * The ledger's records of a check (lg: the client's wrong PINs and lock,
 * the code's budget) into this zone, the later of each: the next check
 * that the ledger would refuse is refused here, without the network.  A
 * right PIN clears the client's record, as it does in the ledger.  A
 * zone without room keeps what it has: the ledger still decides.
 */
void
ngx_http_code_router_guard_fold(ngx_http_request_t *r,
    ngx_http_code_router_decision_t *d, ngx_str_t *buyer,
    const cr_ledger_guard_t *lg)
{
    time_t                              now;
    ngx_http_code_router_guard_t       *g;
    ngx_http_code_router_srv_conf_t    *crscf;
    ngx_http_code_router_guard_node_t  *cn, *an;

    u_char                              code_id[CR_GUARD_ID_LEN];
    u_char                              addr_id[CR_GUARD_ID_LEN];

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
    g = crscf->guard->data;

    ngx_http_code_router_guard_id(r, g, buyer, d, code_id, addr_id);
    now = ngx_time();

    ngx_shmtx_lock(&g->shpool->mutex);

    cn = ngx_http_code_router_guard_find(g, CR_GUARD_CODE, code_id);

    if (cn == NULL && lg->tat > now) {
        cn = ngx_http_code_router_guard_make(g, CR_GUARD_CODE, code_id, now);
    }

    if (cn && lg->tat > cn->u.code.tat) {
        cn->u.code.tat = lg->tat;
        ngx_queue_remove(&cn->lru);
        ngx_queue_insert_head(&g->sh->lru, &cn->lru);
    }

    an = ngx_http_code_router_guard_find(g, CR_GUARD_ADDR, addr_id);

    if (lg->outcome == CR_LEDGER_GUARD_RIGHT) {
        if (an) {
            ngx_http_code_router_guard_drop(g, CR_GUARD_ADDR, an);
        }

    } else {
        if (an == NULL && (lg->fails || lg->until)) {
            an = ngx_http_code_router_guard_make(g, CR_GUARD_ADDR, addr_id,
                                                 now);
        }

        if (an) {
            an->u.addr.fails = ngx_max(an->u.addr.fails, lg->fails);
            an->u.addr.until = ngx_max(an->u.addr.until, lg->until);
        }
    }

    if (cn && !cr_guard_code_kept(&cn->u.code, now)) {
        ngx_http_code_router_guard_drop(g, CR_GUARD_CODE, cn);
    }

    ngx_shmtx_unlock(&g->shpool->mutex);
}



/*
 * The records' ids: the code as the scan counts know it (the key's
 * fingerprint, kid, serial: two brands' codes never share a record), and
 * with it the client: the API's buyer id, else the address nginx sees
 * after realip.  An IPv6 address counts by its /64: one subscriber gets
 * a /64, and 2^64 addresses must not be 2^64 guessers; an IPv4-mapped
 * one, or one of NAT64's well-known prefix 64:ff9b::/96 (RFC 6052: every
 * IPv4 client behind the translator), as its IPv4 address.
 */
static void
ngx_http_code_router_guard_id(ngx_http_request_t *r,
    ngx_http_code_router_guard_t *g, ngx_str_t *buyer,
    ngx_http_code_router_decision_t *d, u_char *code_id, u_char *addr_id)
{
    ngx_uint_t                        i;
    ngx_http_code_router_srv_conf_t  *crscf;

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    ngx_memzero(code_id, CR_GUARD_ID_LEN);
    ngx_memcpy(code_id, crscf->ring->keys[d->kid].fp, CR_SCANS_FP_LEN);
    code_id[CR_SCANS_FP_LEN] = (u_char) d->kid;

    for (i = 0; i < 5; i++) {
        code_id[CR_SCANS_FP_LEN + 1 + i] = (u_char) (d->serial
                                                     >> (8 * (4 - i)));
    }

    ngx_memcpy(addr_id, code_id, CR_GUARD_ID_LEN);
    ngx_http_code_router_guard_client(r, g, buyer,
                                      &addr_id[CR_SCANS_FP_LEN + 6]);
}


/* The client's part of an address id: CR_GUARD_CLIENT_LEN bytes, kind
 * then address (zero-padded). */
static void
ngx_http_code_router_guard_client(ngx_http_request_t *r,
    ngx_http_code_router_guard_t *g, ngx_str_t *buyer, u_char *client)
{
    struct sockaddr  *sa;
#if (NGX_HAVE_INET6)
    u_char           *a6;

    static const u_char  nat64[12] = { 0, 0x64, 0xff, 0x9b };
#endif

    sa = r->connection->sockaddr;

    if (buyer->len) {
        client[0] = 'b';
        cr_guard_buyer(&client[1], g->sh->buyer_key,
                       (const char *) buyer->data, buyer->len);
        return;
    }

    switch (sa->sa_family) {

    case AF_INET:
        client[0] = 4;
        ngx_memcpy(&client[1],
                   &((struct sockaddr_in *) sa)->sin_addr.s_addr, 4);
        break;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        a6 = ((struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;

        if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *) a6)
            || ngx_memcmp(a6, nat64, 12) == 0)
        {
            client[0] = 4;
            ngx_memcpy(&client[1], &a6[12], 4);

        } else {
            client[0] = 6;
            ngx_memcpy(&client[1], a6, 8);
        }

        break;
#endif

    default:                        /* a UNIX socket: one local client */
        client[0] = 1;
        break;
    }
}


/* The record of id in its kind's tree, or NULL.  Zone locked. */
static ngx_http_code_router_guard_node_t *
ngx_http_code_router_guard_find(ngx_http_code_router_guard_t *g,
    ngx_uint_t kind, u_char *id)
{
    ngx_str_t  key;

    key.data = id;
    key.len = CR_GUARD_ID_LEN;

    /* sn is the record's first member. */
    return (ngx_http_code_router_guard_node_t *)
               ngx_str_rbtree_lookup(&g->sh->rbtree[kind], &key,
                                     ngx_crc32_short(id, CR_GUARD_ID_LEN));
}


/*
 * A new record of id, or NULL if its kind's share is used up.  Only a
 * code's record whose bucket is full again is ever dropped for room (it
 * says what no record says): a lock, a spent budget or an address's
 * wrong PIN is never forgotten.  Those looked at that must stay go to
 * the head, so that the next look sees others.  Zone locked.
 */
static ngx_http_code_router_guard_node_t *
ngx_http_code_router_guard_make(ngx_http_code_router_guard_t *g,
    ngx_uint_t kind, u_char *id, time_t now)
{
    ngx_uint_t                          i;
    ngx_queue_t                        *q;
    ngx_http_code_router_guard_node_t  *gn;

    for (i = 0; kind == CR_GUARD_CODE && g->sh->room[kind] == 0
                && i < CR_GUARD_SCAN && !ngx_queue_empty(&g->sh->lru); i++)
    {
        q = ngx_queue_last(&g->sh->lru);
        gn = ngx_queue_data(q, ngx_http_code_router_guard_node_t, lru);

        if (cr_guard_code_kept(&gn->u.code, now)) {
            ngx_queue_remove(q);
            ngx_queue_insert_head(&g->sh->lru, q);
            continue;
        }

        ngx_http_code_router_guard_drop(g, kind, gn);
        (void) ngx_atomic_fetch_add(&g->sh->evicted, 1);
    }

    if (g->sh->room[kind] == 0) {
        return NULL;
    }

    gn = ngx_slab_alloc_locked(g->shpool,
                               sizeof(ngx_http_code_router_guard_node_t));
    if (gn == NULL) {
        return NULL;
    }

    ngx_memzero(gn, sizeof(ngx_http_code_router_guard_node_t));
    ngx_memcpy(gn->id, id, CR_GUARD_ID_LEN);
    gn->sn.node.key = ngx_crc32_short(id, CR_GUARD_ID_LEN);
    gn->sn.str.data = gn->id;
    gn->sn.str.len = CR_GUARD_ID_LEN;

    ngx_rbtree_insert(&g->sh->rbtree[kind], &gn->sn.node);

    if (kind == CR_GUARD_CODE) {
        ngx_queue_insert_head(&g->sh->lru, &gn->lru);
    }

    g->sh->room[kind]--;
    (void) ngx_atomic_fetch_add(&g->sh->records, 1);

    return gn;
}


/* Zone locked. */
static void
ngx_http_code_router_guard_drop(ngx_http_code_router_guard_t *g,
    ngx_uint_t kind, ngx_http_code_router_guard_node_t *gn)
{
    if (kind == CR_GUARD_CODE) {
        ngx_queue_remove(&gn->lru);
    }

    ngx_rbtree_delete(&g->sh->rbtree[kind], &gn->sn.node);
    ngx_slab_free_locked(g->shpool, gn);

    g->sh->room[kind]++;
    (void) ngx_atomic_fetch_add(&g->sh->records, -1);
}


/* Zone of the server's guard: every verdict is counted there. */
void
ngx_http_code_router_guard_count(ngx_http_request_t *r,
    ngx_http_code_router_ver_e ver)
{
    ngx_http_code_router_guard_t     *g;
    ngx_http_code_router_srv_conf_t  *crscf;

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);
    g = crscf->guard->data;

    (void) ngx_atomic_fetch_add(&g->sh->outcome[ver], 1);
}


/* /status: the PIN checks by outcome and the guard zone, for Prometheus
 * (a guesser shows up here long before the odds matter). */
static const char  ngx_http_code_router_checks_metrics[] =
    "# HELP code_router_pin_checks_total PINs checked by code_router_verify"
    ", by what they said.\n"
    "# TYPE code_router_pin_checks_total counter\n";

static const char  ngx_http_code_router_guard_metrics[] =
    "# HELP code_router_pin_guard_records Wrong-PIN records (per code and "
    "address, per code) in the guard zones.\n"
    "# TYPE code_router_pin_guard_records gauge\n"
    "code_router_pin_guard_records %uA\n"
    "# HELP code_router_pin_guard_room Records the guard zones can still "
    "make, by kind (none left: new guessers are answered locked).\n"
    "# TYPE code_router_pin_guard_room gauge\n"
    "code_router_pin_guard_room{kind=\"code\"} %uA\n"
    "code_router_pin_guard_room{kind=\"address\"} %uA\n"
    "# HELP code_router_pin_guard_evicted_total Codes' records dropped for "
    "room, their buckets full again (nothing is forgotten).\n"
    "# TYPE code_router_pin_guard_evicted_total counter\n"
    "code_router_pin_guard_evicted_total %uA\n"
    "# HELP code_router_pin_guard_full_total PIN checks answered locked "
    "because the guard zone had no room to count them.\n"
    "# TYPE code_router_pin_guard_full_total counter\n"
    "code_router_pin_guard_full_total %uA\n";


size_t
ngx_http_code_router_guard_status_len(ngx_http_request_t *r)
{
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (crmcf->guards.nelts == 0) {
        return 0;
    }

    return sizeof(ngx_http_code_router_checks_metrics)
           + CR_VER_N * (sizeof("code_router_pin_checks_total{verification="
                                "\"malformed_pin\"} \n") + NGX_ATOMIC_T_LEN)
           + sizeof(ngx_http_code_router_guard_metrics)
           + 5 * NGX_ATOMIC_T_LEN;
}


/* Every guard zone's counts, summed (a zone per server: one brand's). */
u_char *
ngx_http_code_router_guard_status(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    ngx_uint_t                         i, z;
    ngx_atomic_uint_t                  outcome[CR_VER_N], sum[6];
    ngx_shm_zone_t                   **zones;
    ngx_http_code_router_guard_sh_t   *sh;
    ngx_http_code_router_main_conf_t  *crmcf;

    crmcf = ngx_http_get_module_main_conf(r, ngx_http_code_router_module);

    if (crmcf->guards.nelts == 0) {
        return p;
    }

    ngx_memzero(outcome, sizeof(outcome));
    ngx_memzero(sum, sizeof(sum));
    zones = crmcf->guards.elts;

    for (z = 0; z < crmcf->guards.nelts; z++) {
        sh = ((ngx_http_code_router_guard_t *) zones[z]->data)->sh;

        for (i = 0; i < CR_VER_N; i++) {
            outcome[i] += sh->outcome[i];
        }

        sum[0] += sh->records;
        sum[1] += sh->room[CR_GUARD_CODE];
        sum[2] += sh->room[CR_GUARD_ADDR];
        sum[3] += sh->evicted;
        sum[4] += sh->full;
    }

    p = ngx_slprintf(p, last, "%s", ngx_http_code_router_checks_metrics);

    for (i = CR_VER_GENUINE; i < CR_VER_N; i++) {
        p = ngx_slprintf(p, last,
                         "code_router_pin_checks_total{verification=\"%V\"}"
                         " %uA\n", &ngx_http_code_router_verdicts[i].name,
                         outcome[i]);
    }

    return ngx_slprintf(p, last, ngx_http_code_router_guard_metrics,
                        sum[0], sum[1], sum[2], sum[3], sum[4]);
}


/* code_router_pin_guard zone=NAME:SIZE: the wrong-PIN records, at the
 * http level or a server's own (one brand's: no other can fill it). */
char *
ngx_http_code_router_pin_guard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_code_router_srv_conf_t *crscf = conf;

    u_char                            *p;
    ssize_t                            size;
    ngx_str_t                         *value, name, s;
    ngx_shm_zone_t                   **zp;
    ngx_http_code_router_guard_t      *g;
    ngx_http_code_router_main_conf_t  *crmcf;

    if (crscf->guard) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strncmp(value[1].data, "zone=", 5) != 0
        || (p = ngx_strlchr(value[1].data + 5,
                            value[1].data + value[1].len, ':'))
           == NULL)
    {
        return "takes zone=NAME:SIZE";
    }

    name.data = value[1].data + 5;
    name.len = p - name.data;
    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (name.len == 0 || size == NGX_ERROR) {
        return "takes zone=NAME:SIZE";
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &name);
        return NGX_CONF_ERROR;
    }

    crscf->guard = ngx_shared_memory_add(cf, &name, size,
                                        &ngx_http_code_router_module);
    if (crscf->guard == NULL) {
        return NGX_CONF_ERROR;
    }

    /* A name given again (servers of one brand sharing a zone). */
    if (crscf->guard->data) {
        if (crscf->guard->init != ngx_http_code_router_guard_init) {
            return "zone is already used";
        }

        return NGX_CONF_OK;
    }

    g = ngx_pcalloc(cf->pool, sizeof(ngx_http_code_router_guard_t));
    if (g == NULL) {
        return NGX_CONF_ERROR;
    }

    crscf->guard->init = ngx_http_code_router_guard_init;
    crscf->guard->data = g;

    crmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_code_router_module);

    if (crmcf->guards.elts == NULL
        && ngx_array_init(&crmcf->guards, cf->pool, 4,
                          sizeof(ngx_shm_zone_t *))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    zp = ngx_array_push(&crmcf->guards);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = crscf->guard;

    /* Every PIN check has a guard: with it, what right PINs need. */
    if (ngx_http_code_router_ledger_embedded(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* One brand can fill a zone it shares with another (nothing is dropped
 * for room): nginx -t says so, once per zone. */
void
ngx_http_code_router_guard_brand(ngx_conf_t *cf,
    ngx_http_code_router_srv_conf_t *crscf)
{
    ngx_uint_t                     i;
    cr_keyring_t                  *a, *b;
    ngx_http_code_router_guard_t  *g;

    g = crscf->guard->data;
    a = g->brand;
    b = crscf->ring;

    if (a == NULL) {
        g->brand = b;
        return;
    }

    if (a == b || g->shared) {
        return;
    }

    for (i = 0; i <= CR_KID_MAX; i++) {
        if (a->keys[i].present != b->keys[i].present
            || (a->keys[i].present
                && ngx_memcmp(a->keys[i].fp, b->keys[i].fp, CR_KEY_FP_LEN)
                   != 0))
        {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "the PIN guard zone \"%V\" is shared by "
                               "servers with other keys: one brand's "
                               "guessers can fill it at another's cost; give "
                               "each brand's server its own "
                               "\"code_router_pin_guard\"",
                               &crscf->guard->shm.name);
            g->shared = 1;
            return;
        }
    }
}


static ngx_int_t
ngx_http_code_router_guard_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_code_router_guard_t  *og = data;
    ngx_http_code_router_guard_t  *g = shm_zone->data;

    ngx_uint_t                     i, slots;

    g->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* A reload keeps the records: a lockout outlives "nginx -s reload". */
    if (og) {
        g->sh = og->sh;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        g->sh = g->shpool->data;
        return NGX_OK;
    }

    g->sh = ngx_slab_calloc(g->shpool,
                            sizeof(ngx_http_code_router_guard_sh_t));
    if (g->sh == NULL) {
        return NGX_ERROR;
    }

    g->shpool->data = g->sh;

    for (i = 0; i < CR_GUARD_KINDS; i++) {
        ngx_rbtree_init(&g->sh->rbtree[i], &g->sh->sentinel[i],
                        ngx_str_rbtree_insert_value);
    }

    ngx_queue_init(&g->sh->lru);
    cr_guard_buyer_key(g->sh->buyer_key);

    /* The free pages in 128-byte slots, less one page of slack: a quarter
     * for the codes' budgets (they come and go), the rest for the
     * addresses' records (kept until a right PIN or a restart). */
    slots = (g->shpool->pfree > 1 ? g->shpool->pfree - 1 : 0)
            * (ngx_pagesize / CR_GUARD_SLOT);
    g->sh->room[CR_GUARD_CODE] = slots / 4;
    g->sh->room[CR_GUARD_ADDR] = slots - slots / 4;

    g->shpool->log_nomem = 0;

    return NGX_OK;
}
