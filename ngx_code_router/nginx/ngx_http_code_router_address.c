/*
 * The client's address as the scan record keeps it
 * (code_router_scan_address): in full, truncated to its network (IPv4
 * /24, IPv6 /48), as a keyed hash that changes every UTC day, or not at
 * all.  README ("code_router_scan_address") says what each means under
 * PIPL (个人信息保护法).
 */

#include "ngx_http_code_router.h"

/* After nginx's headers: they set the feature macros (_GNU_SOURCE) that
 * the system headers sodium.h includes must see first. */
#include <sodium.h>


#define CR_ADDR_HASH_LEN  16                /* hex digits of 64 bits */


static const cr_key_t *ngx_http_code_router_addr_key(ngx_http_request_t *r);


ngx_int_t
ngx_http_code_router_scan_address(ngx_http_request_t *r, ngx_str_t *out)
{
    u_char                           *p, msg[1 + 8 + 16], h[8];
    size_t                            n;
    uint64_t                          day;
    ngx_uint_t                        i, mode;
    struct sockaddr                  *sa;
    struct sockaddr_in                sin;
    const cr_key_t                   *key;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6               sin6;
#endif
    ngx_http_code_router_loc_conf_t  *crlcf;

    crlcf = ngx_http_get_module_loc_conf(r, ngx_http_code_router_module);
    mode = crlcf->scan_address;
    sa = r->connection->sockaddr;

    if (mode == CR_ADDR_FULL
        || (sa->sa_family != AF_INET
#if (NGX_HAVE_INET6)
            && sa->sa_family != AF_INET6
#endif
           ))
    {
        *out = mode == CR_ADDR_NONE ? (ngx_str_t) ngx_null_string
                                    : r->connection->addr_text;
        return NGX_OK;
    }

    if (mode == CR_ADDR_NONE) {
        ngx_str_null(out);
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_SOCKADDR_STRLEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    if (mode == CR_ADDR_TRUNCATED) {
        if (sa->sa_family == AF_INET) {
            ngx_memcpy(&sin, sa, sizeof(struct sockaddr_in));
            sin.sin_addr.s_addr &= htonl(0xffffff00);
            out->len = ngx_sock_ntop((struct sockaddr *) &sin,
                                     sizeof(struct sockaddr_in), p,
                                     NGX_SOCKADDR_STRLEN, 0);
            return NGX_OK;
        }

#if (NGX_HAVE_INET6)
        ngx_memcpy(&sin6, sa, sizeof(struct sockaddr_in6));

        /* An IPv4 client of a dual-stack socket (::ffff:a.b.c.d): its
         * /24, as for IPv4; else the /48. */
        if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
            sin6.sin6_addr.s6_addr[15] = 0;

        } else {
            ngx_memzero(sin6.sin6_addr.s6_addr + 6, 10);
        }

        out->len = ngx_inet6_ntop(sin6.sin6_addr.s6_addr, p,
                                  NGX_SOCKADDR_STRLEN);
#endif
        return NGX_OK;
    }

    /* Hashed: SipHash-2-4 of (UTC day, family, address) under a key of
     * the server's own: a day's scans of one address group together, the
     * next day's cannot be linked to them, and nobody without the key
     * can test a guessed address. */
    key = ngx_http_code_router_addr_key(r);
    if (key == NULL) {
        ngx_str_null(out);
        return NGX_OK;
    }

    day = (uint64_t) ngx_time() / 86400;

    for (i = 0; i < 8; i++) {
        msg[1 + i] = (u_char) (day >> (56 - 8 * i));
    }

    if (sa->sa_family == AF_INET) {
        msg[0] = 4;
        ngx_memcpy(msg + 9, &((struct sockaddr_in *) sa)->sin_addr, 4);
        n = 9 + 4;

    } else {
#if (NGX_HAVE_INET6)
        msg[0] = 6;
        ngx_memcpy(msg + 9, &((struct sockaddr_in6 *) sa)->sin6_addr, 16);
        n = 9 + 16;
#else
        n = 9;
#endif
    }

    crypto_shorthash_siphash24(h, msg, n, key->k_addr);

    out->len = ngx_hex_dump(p, h, sizeof(h)) - p;

    return NGX_OK;
}


/* The key of the server's lowest key id: the same on every node that
 * serves the brand, whichever key id a code has. */
static const cr_key_t *
ngx_http_code_router_addr_key(ngx_http_request_t *r)
{
    ngx_uint_t                        kid;
    ngx_http_code_router_srv_conf_t  *crscf;

    crscf = ngx_http_get_module_srv_conf(r, ngx_http_code_router_module);

    if (crscf->ring == NULL) {
        return NULL;
    }

    for (kid = 0; kid <= CR_KID_MAX; kid++) {
        if (crscf->ring->keys[kid].present) {
            return &crscf->ring->keys[kid];
        }
    }

    return NULL;
}
