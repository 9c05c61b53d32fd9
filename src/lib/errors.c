/* errors.c — the table of API error codes with their HTTP status and
 * bilingual default messages.  Adding an error is adding a row. */
#include "fapiao/err.h"

#include <stdarg.h>
#include <stdio.h>

int fp_failv(fp_err *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        err->code = code;
    }
    return code;
}

int fp_fail(fp_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fp_failv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void fp_first_fail(fp_first_err *f, int code, const char *fmt, ...)
{
    if (f->rc) /* the first failure stands */
        return;
    va_list ap;
    va_start(ap, fmt);
    f->rc = fp_failv(f->err, code, fmt, ap);
    va_end(ap);
}

static const fp_code_info codes[FPC__COUNT] = {
    [FPC_NONE] = {"NONE", 200, "OK", "成功", "OK"},
    [FPC_MALFORMED_JSON] = {"MALFORMED_JSON", 400, "Malformed JSON", "请求体不是合法的 JSON",
                            "The request body is not valid JSON"},
    [FPC_INVALID_UTF8] = {"INVALID_UTF8", 400, "Invalid UTF-8", "请求体包含无效的 UTF-8 字节序列",
                          "The request body contains invalid UTF-8"},
    [FPC_BODY_TOO_LARGE] = {"BODY_TOO_LARGE", 413, "Body too large", "请求体超过允许的大小",
                            "The request body exceeds the allowed size"},
    [FPC_UNSUPPORTED_MEDIA_TYPE] = {"UNSUPPORTED_MEDIA_TYPE", 415, "Unsupported media type",
                                    "Content-Type 必须是 application/json",
                                    "Content-Type must be application/json"},
    [FPC_FIELD_REQUIRED] = {"FIELD_REQUIRED", 400, "Field required", "缺少必填字段",
                            "A required field is missing"},
    [FPC_FIELD_TYPE] = {"FIELD_TYPE", 400, "Wrong field type",
                        "字段类型错误（金额、数量、单价、税率须为字符串）",
                        "Wrong field type (money, quantity, price and rate are strings)"},
    [FPC_INVALID_FIELD] = {"INVALID_FIELD", 400, "Invalid field", "字段取值无效",
                           "A field has an invalid value"},
    [FPC_UNKNOWN_FIELD] = {"UNKNOWN_FIELD", 400, "Unknown field", "存在未定义的字段",
                           "The request contains an unknown field"},
    [FPC_DUPLICATE_FIELD] = {"DUPLICATE_FIELD", 400, "Duplicate field", "同一对象中字段重复",
                             "A field appears twice in one object"},
    [FPC_TOO_DEEP] = {"TOO_DEEP", 400, "JSON nested too deeply", "JSON 嵌套层级过深",
                      "The JSON is nested too deeply"},
    [FPC_TOLERANCE_EXCEEDED] = {"TOLERANCE_EXCEEDED", 400, "Tolerance exceeded",
                                "金额或税额超出允许误差",
                                "An amount or tax is outside the allowed tolerance"},
    [FPC_INVALID_TAX_ID] = {"INVALID_TAX_ID", 400, "Invalid taxpayer id", "纳税人识别号无效",
                            "The taxpayer id is invalid"},
    [FPC_INVALID_TAX_CODE] = {"INVALID_TAX_CODE", 400, "Invalid tax classification code",
                              "税收分类编码无效", "The tax classification code is invalid"},
    [FPC_RATE_NOT_ALLOWED] = {"RATE_NOT_ALLOWED", 400, "Rate not allowed", "税率不在允许范围内",
                              "The tax rate is not allowed"},
    [FPC_AMOUNT_OUT_OF_RANGE] = {"AMOUNT_OUT_OF_RANGE", 400, "Amount out of range",
                                 "金额超出允许范围", "The amount is outside the allowed range"},
    [FPC_INVALID_DISCOUNT] = {"INVALID_DISCOUNT", 400, "Invalid discount line", "折扣行不符合规则",
                              "The discount line breaks the discount rules"},
    /* practice refusals: docs/domain.md */
    [FPC_SPECIAL_INVOICE_NOT_ALLOWED] =
        {"SPECIAL_INVOICE_NOT_ALLOWED", 400, "Special VAT invoice not allowed",
         "增值税专用发票不能开具给自然人，也不能含免税或不征税项目",
         "A special VAT invoice (01) cannot go to a natural person or carry exempt or "
         "not-taxable lines"},
    [FPC_NON_TAXABLE_MISMATCH] =
        {"NON_TAXABLE_CODE_MISMATCH", 400, "Not-taxable code and flag mismatch",
         "不征税类税收分类编码（6 开头）须使用不征税标识且税率为 0，不征税标识也只能用于此类编码",
         "A not-taxable tax code (starting with 6) needs the non_taxable flag and rate 0, and the "
         "non_taxable flag needs such a code"},
    [FPC_IDEMPOTENCY_KEY_REQUIRED] =
        {"IDEMPOTENCY_KEY_REQUIRED", 400, "Idempotency key required",
         "缺少 Idempotency-Key 请求头（业务流水号）",
         "The Idempotency-Key header (business serial number) is required"},
    [FPC_IDEMPOTENCY_KEY_INVALID] =
        {"IDEMPOTENCY_KEY_INVALID", 400, "Invalid idempotency key",
         "Idempotency-Key 须为 1–64 个字符，仅含 A-Z a-z 0-9 _ - . :",
         "Idempotency-Key must be 1-64 characters of A-Z a-z 0-9 _ - . :"},
    [FPC_IDEMPOTENCY_KEY_REUSED] = {"IDEMPOTENCY_KEY_REUSED", 422, "Idempotency key reused",
                                    "该流水号已用于另一张内容不同的发票",
                                    "This key was already used with a different request body"},
    [FPC_IDEMPOTENCY_IN_PROGRESS] = {"IDEMPOTENCY_IN_PROGRESS", 409, "Request in progress",
                                     "相同流水号的请求正在处理中，请稍后重试",
                                     "A request with this key is still in progress; retry later"},
    [FPC_UNAUTHENTICATED] = {"UNAUTHENTICATED", 401, "Unauthenticated",
                             "身份认证失败：缺少或无效的凭据",
                             "Authentication failed: missing or invalid credentials"},
    [FPC_TOKEN_EXPIRED] = {"TOKEN_EXPIRED", 401, "Token expired", "访问令牌已过期，请重新获取",
                           "The access token has expired; request a new one"},
    [FPC_FORBIDDEN] = {"FORBIDDEN", 403, "Forbidden", "没有执行此操作的权限",
                       "You are not allowed to do this"},
    [FPC_IP_NOT_ALLOWED] = {"IP_NOT_ALLOWED", 403, "IP not allowed", "来源 IP 不在白名单内",
                            "The client IP address is not on the allowlist"},
    [FPC_NOT_FOUND] = {"NOT_FOUND", 404, "Not found", "资源不存在", "The resource does not exist"},
    [FPC_METHOD_NOT_ALLOWED] = {"METHOD_NOT_ALLOWED", 405, "Method not allowed",
                                "该路径不支持此 HTTP 方法",
                                "This HTTP method is not allowed on this path"},
    [FPC_RATE_LIMITED] = {"RATE_LIMITED", 429, "Rate limited", "请求过于频繁，请稍后重试",
                          "Too many requests; retry later"},
    [FPC_DEGRADED] = {"DEGRADED", 503, "Service degraded", "服务处于降级模式，暂不接受写入",
                      "The service is degraded and does not accept writes now"},
    [FPC_NUMBER_RANGE_EXHAUSTED] = {"NUMBER_RANGE_EXHAUSTED", 503, "Number range exhausted",
                                    "发票号码段已用尽，请导入新的号码段",
                                    "The invoice number range is exhausted; import a new range"},
    [FPC_RED_EXCEEDS_BLUE] = {"RED_EXCEEDS_BLUE", 400, "Red exceeds blue", "红字金额超过蓝字发票",
                              "The red invoice exceeds the blue invoice"},
    [FPC_RED_FORM_STATE] = {"RED_FORM_STATE", 409, "Red form state", "红字确认单状态不允许此操作",
                            "The red-invoice form's state does not allow this"},
    [FPC_RENDER_FAILED] = {"RENDER_FAILED", 500, "Render failed",
                           "发票 PDF 生成失败（管理员可重新投递该任务）",
                           "The invoice PDF could not be rendered (an admin can re-drive the job)"},
    [FPC_JOB_STATE] = {"JOB_STATE", 409, "Job state",
                       "任务状态不允许此操作（只有死信任务可以重新投递）",
                       "The job's state does not allow this (only dead jobs can be re-driven)"},
    /* shutdown and the issue clock (docs/operations.md) */
    [FPC_SHUTTING_DOWN] = {"SHUTTING_DOWN", 503, "Shutting down",
                           "服务正在停止，本请求未保存；请用相同的 Idempotency-Key 重试",
                           "The server is stopping; nothing was stored; retry with the same "
                           "Idempotency-Key"},
    [FPC_OUTCOME_UNKNOWN] = {"OUTCOME_UNKNOWN", 503, "Outcome unknown",
                             "服务停止时本请求正在提交，结果未知；请用相同的 Idempotency-Key "
                             "重试以获知结果（已开具则原样返回）",
                             "The server stopped while this request was being committed; its "
                             "outcome is unknown. Retry with the same Idempotency-Key to learn "
                             "it (an issued invoice is replayed)"},
    [FPC_CLOCK_BEHIND] = {"CLOCK_BEHIND", 503, "Clock behind",
                          "服务器时钟落后于最近开票时间，暂停开票，直到时钟追上",
                          "The server clock is behind the last issue time; issuing is paused "
                          "until the clock passes it"},
    [FPC_CLOCK_JUMPED] =
        {"CLOCK_JUMPED", 503, "Clock jumped",
         "服务器时钟突然跳前超过一天，暂停开票，待运维确认（fapiao clock confirm）",
         "The server clock jumped ahead by more than a day; issuing is paused "
         "until an operator confirms it (fapiao clock confirm)"},
    /* a stalled disk (docs/storage-space.md) */
    [FPC_WRITE_TIMEOUT] = {"WRITE_TIMEOUT", 503, "Write timed out, nothing stored",
                           "存储写入过慢，请求在排队期间已超时，未保存任何内容；"
                           "请稍后使用相同的 Idempotency-Key 重试",
                           "The store is writing too slowly: the request timed out while queued "
                           "and nothing was stored; retry later with the same Idempotency-Key"},
    [FPC_WRITE_OUTCOME_UNKNOWN] =
        {"WRITE_OUTCOME_UNKNOWN", 503, "Write outcome unknown",
         "存储写入过慢，请求已在提交中但超过时限，结果未知（可能已开具）；"
         "请使用相同的 Idempotency-Key 重试以获知结果，不会重复开具",
         "The store is writing too slowly: the request was being committed when its time ran "
         "out, so its outcome is unknown (the invoice may exist); retry with the same "
         "Idempotency-Key to learn it (it is never issued twice)"},
    [FPC_PDF_RETRYING] = {"PDF_RETRYING", 503, "PDF render retrying",
                          "发票 PDF 暂时无法生成，正在自动重试",
                          "The invoice PDF cannot be rendered right now; it is being retried"},
    [FPC_INTERNAL] = {"INTERNAL", 500, "Internal error", "服务器内部错误", "Internal server error"},
    [FPC_AMBIGUOUS_FRAMING] =
        {"AMBIGUOUS_FRAMING", 400, "Ambiguous message framing",
         "请求同时带有 Content-Length 与 Transfer-Encoding、多个不同的 Content-Length 或不支持的 "
         "Transfer-Encoding；连接将关闭",
         "The request has both Content-Length and Transfer-Encoding, differing Content-Lengths or "
         "an unsupported Transfer-Encoding; the connection is closed"},
    [FPC_INVALID_PATH] = {"INVALID_PATH", 400, "Invalid path", "请求路径或参数含有 NUL 字符（%00）",
                          "The request path or query contains a NUL character (%00)"},
    [FPC_RESPONSE_MEMORY_EXHAUSTED] =
        {"RESPONSE_MEMORY_EXHAUSTED", 503, "Response memory exhausted",
         "正在发送的大响应已占满内存预算，请稍后重试",
         "Large responses being sent have used up the memory budget; retry later"},
    [FPC_STORE_FAILSTOP] =
        {"STORE_FAILSTOP", 503, "Store stopped",
         "存储发生 I/O 错误或损坏，已停止写入：本次请求未保存任何内容；需运维人员检查"
         "存储（fapiao check）并重启后才能恢复开票",
         "The store hit an I/O error or corruption and stopped writing: nothing "
         "of this request was stored; an operator must check the store (fapiao "
         "check) and restart the service before issuing resumes"},
    [FPC_STORE_CORRUPT_ROW] = {"STORE_CORRUPT_ROW", 500, "Stored record corrupt",
                               "存储中的记录已损坏，无法读取；需运维人员检查存储或从备份恢复",
                               "A stored record is corrupt and cannot be read; an operator must "
                               "check the store or restore it from a backup"},
    [FPC_AUTH_FAILURES_LIMITED] = {"AUTH_FAILURES_LIMITED", 429, "Too many authentication failures",
                                   "此地址认证失败过多，请稍后重试",
                                   "Too many authentication failures from this address; retry "
                                   "later"},
    [FPC_SELLER_DISABLED] =
        {"SELLER_DISABLED", 403, "Seller disabled",
         "该凭据所属的销售方已停用，不能开具发票（fapiao sellers enable 可恢复）",
         "The credential's seller is disabled and cannot issue invoices "
         "(fapiao sellers enable restores it)"},
    [FPC_CREDIT_EXCEEDED] = {"CREDIT_EXCEEDED", 422, "Credit line exceeded",
                             "本张发票金额（不含税）超过本月剩余授信额度，未开具",
                             "The invoice's amount (excluding VAT) exceeds the month's remaining "
                             "credit line; nothing was issued"},
    [FPC_CREDENTIAL_PROTECTED] =
        {"CREDENTIAL_PROTECTED", 403, "Credential managed on the server only",
         "管理员凭据与实例级凭据只能在服务器上用 fapiao keys 创建、轮换或吊销",
         "Admin and instance-wide credentials are created, rotated and revoked with fapiao keys "
         "on the server only"},
    [FPC_CREDENTIAL_STATE] = {"CREDENTIAL_STATE", 409, "Credential revoked",
                              "凭据已吊销，不能再轮换或吊销",
                              "The credential is revoked: it "
                              "cannot be rotated or revoked again"},
    [FPC_CREDENTIAL_EXISTS] = {"CREDENTIAL_EXISTS", 409, "Credential exists",
                               "已有使用此 client_id 的凭据",
                               "A credential with this client_id "
                               "already exists"},
};

const fp_code_info *fp_code_get(fp_code c)
{
    if ((int)c < 0 || c >= FPC__COUNT || !codes[c].name)
        return &codes[FPC_INTERNAL];
    return &codes[c];
}
