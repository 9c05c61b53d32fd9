/* sellers.c — the sellers, cached: they change only by admin action. */
#include "internal.h"

#include "fapiao/store.h"

int fp_server_seller(fp_server *s, int64_t id, fp_seller *out)
{
    pthread_mutex_lock(&s->seller_lock);
    for (int i = 0; i < s->nsellers; i++)
        if (s->sellers[i].id == id) {
            *out = s->sellers[i].s;
            pthread_mutex_unlock(&s->seller_lock);
            return 0;
        }
    pthread_mutex_unlock(&s->seller_lock);
    int rc = fp_store_get_seller(s->o.store, id, out);
    if (rc == 0) {
        pthread_mutex_lock(&s->seller_lock);
        if (s->nsellers < FP_SELLER_CACHE) {
            s->sellers[s->nsellers].id = id;
            s->sellers[s->nsellers].s = *out;
            s->nsellers++;
        }
        pthread_mutex_unlock(&s->seller_lock);
    }
    return rc;
}
