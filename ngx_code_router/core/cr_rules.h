/*
 * cr_rules: which of a campaign's rules a scan takes (docs/loading.md,
 * "Rules").  Pure C (libsodium for the split), so the module, the unit
 * tests and the CLI share one definition.  The store keeps the rules
 * (cr_record.h, cr_store.h); the router gathers the facts of a scan and
 * asks cr_rule_pick() once per scan.
 */

#ifndef CR_RULES_H
#define CR_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "cr_codec.h"
#include "cr_record.h"


/* One scan, as far as the rules ask. */
typedef struct {
    unsigned   device;                 /* cr_device_e, from cr_ua_device */
    cr_str_t   lang;                   /* Accept-Language's first tag */
    cr_str_t   region;                 /* the request's (code_router_region) */
    unsigned   bucket;                 /* cr_split_bucket() */
    int        has_scans;              /* the code's count is known */
    uint64_t   scans;                  /* this scan included */
} cr_rule_facts_t;


/* The facts (CR_FACT_* of cr_record.h) that rules[0..n) ask about:
 * gather only those. */
unsigned cr_rules_need(const cr_rule_t *rules, size_t n);

/*
 * The first of rules[0..n) (in rule order) whose every condition set
 * holds for f, or NULL: then the campaign's own target.  A condition
 * holds when it is empty; lang when the rule's tag is f->lang or a
 * prefix of it ending before a '-' ("zh" holds for "zh-TW", "zh-TW" not
 * for "zh"), in any ASCII case; region when equal in any ASCII case and
 * not empty; device when equal; split when lo <= f->bucket <= hi;
 * min_scans / max_scans when the count is known and within them (an
 * unknown count holds for neither).
 */
const cr_rule_t *cr_rule_pick(const cr_rule_t *rules, size_t n,
    const cr_rule_facts_t *f);

/*
 * The split bucket of a serial, 0..99: SipHash-2-4 under the key id's
 * k_split (derived from its master key), so that one item always falls
 * in one bucket and nobody without the key can tell which from the code.
 */
unsigned cr_split_bucket(const cr_key_t *key, uint64_t serial);

/* The first language tag of an Accept-Language value: its bytes up to a
 * ',', ';' or blank, leading blanks skipped ("" for none or "*"). */
cr_str_t cr_lang_first(const char *v, size_t len);

/* "LO-HI" (0 <= LO <= HI <= 99) into *lo, *hi: NULL, or why not. */
const char *cr_split_parse(const char *s, size_t n, unsigned *lo,
    unsigned *hi);

#endif /* CR_RULES_H */
