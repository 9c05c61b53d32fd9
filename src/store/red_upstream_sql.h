/* red_upstream_sql.h — what the tax platform said about a red form
 * (docs/upstream.md "Red forms"), one text for both backends' migrations
 * (SQLite 15, PostgreSQL 7): the form's uuid and number on the platform
 * and its state there (hzqrxxztDm); NULL until the form is filed. */
#ifndef FP_STORE_RED_UPSTREAM_SQL_H
#define FP_STORE_RED_UPSTREAM_SQL_H

#define FP_RED_UPSTREAM_SQL                                                                        \
    "ALTER TABLE red_forms ADD COLUMN up_uuid TEXT;"                                               \
    "ALTER TABLE red_forms ADD COLUMN up_number TEXT;"                                             \
    "ALTER TABLE red_forms ADD COLUMN up_state TEXT;"

/* Our answer to a filed form that the platform has not taken yet (Y
 * confirm, N reject, C withdraw: QDHZQRDQR's qrlx), and one local form per
 * platform form (a form the buyer filed is taken in once). */
#define FP_RED_ANSWER_SQL                                                                          \
    "ALTER TABLE red_forms ADD COLUMN up_answer TEXT;"                                             \
    "CREATE UNIQUE INDEX red_forms_up_uuid ON red_forms(up_uuid);"

/* The forms the red keeper still has work on: open and not filed, filed
 * and waiting for the other side (red.h's states), or with an answer to
 * send. */
#define FP_RED_UPSTREAM_DUE                                                                        \
    "SELECT seller_id, form_no, coalesce(up_uuid, ''), state, coalesce(up_answer, '') FROM "       \
    "red_forms WHERE (up_uuid IS NULL AND state IN ('no_confirmation_needed', 'awaiting_buyer', "  \
    "'awaiting_seller', 'confirmed')) OR (up_uuid IS NOT NULL AND state IN "                       \
    "('awaiting_buyer', 'awaiting_seller')) OR up_answer IS NOT NULL ORDER BY id LIMIT 1000"

#endif
