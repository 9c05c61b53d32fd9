/* sellers.c — the sellers, cached, and never staler than the database.
 *
 * Sellers change only by admin action (`fapiao sellers`, a separate
 * process), but a disable must hold from the moment the command returns:
 * so each lookup first reads the sellers' generation (one integer that
 * triggers in the database bump on every change of the sellers table,
 * store.h fp_store_sellers_generation) and drops the whole cache when it
 * moved.  That read is a prepared statement on a read connection, a few
 * microseconds next to the issue it guards.  docs/sellers.md. */
#include "internal.h"

#include "fapiao/store.h"

int fp_server_seller(fp_server *s, int64_t id, fp_seller *out)
{
    int64_t gen = 0;
    /* when the generation cannot be read, the store cannot be read either:
     * the cache answers as before (a read failure is the store's to
     * report) */
    int have_gen = fp_store_sellers_generation(s->o.store, &gen) == 0;
    pthread_mutex_lock(&s->seller_lock);
    if (have_gen && gen != s->seller_gen) {
        s->nsellers = 0;
        s->seller_gen = gen;
    }
    for (int i = 0; i < s->nsellers; i++)
        if (s->sellers[i].id == id) {
            *out = s->sellers[i].s;
            pthread_mutex_unlock(&s->seller_lock);
            return 0;
        }
    pthread_mutex_unlock(&s->seller_lock);
    /* read after the generation: a change in between leaves a newer row
     * under the older generation, which the next lookup drops */
    int rc = fp_store_get_seller(s->o.store, id, out);
    if (rc == 0 && have_gen) {
        pthread_mutex_lock(&s->seller_lock);
        if (s->seller_gen == gen) {
            int slot = s->nsellers < FP_SELLER_CACHE ? s->nsellers++ : (int)(id % FP_SELLER_CACHE);
            s->sellers[slot].id = id;
            s->sellers[slot].s = *out;
        }
        pthread_mutex_unlock(&s->seller_lock);
    }
    return rc;
}
