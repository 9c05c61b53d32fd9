/* main.c — the fapiao command: a table of subcommands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define FAPIAO_VERSION "0.1.0"

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("fapiao %s\n", FAPIAO_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *zh, *en;
} commands[] = {
    {"init", cmd_init, "创建数据目录（--demo：含演示销售方、号码段、凭据与自签名证书）",
     "create a data directory (--demo: with a demo seller, range, credential and certificate)"},
    {"serve", cmd_serve, "启动 HTTPS 开票服务", "run the HTTPS invoicing service"},
    {"sellers", cmd_sellers, "管理销售方：新增、列出、查看、修改、停用、启用",
     "manage the sellers: add, list, show, set, disable, enable"},
    {"taxcodes", cmd_taxcodes, "导入或查看税收分类编码表",
     "import or show the tax classification code table"},
    {"ranges", cmd_ranges, "导入或列出发票号码段（预赋码）",
     "import or list invoice number ranges"},
    {"keys", cmd_keys, "管理 API 凭据：创建、轮换、吊销、角色与白名单",
     "manage API credentials: create, rotate, revoke, roles and allowlists"},
    {"outbox", cmd_outbox, "查看或重新投递 PDF 与通知任务（含死信）",
     "list or re-drive the PDF and notification jobs (dead letters too)"},
    {"webhook", cmd_webhook, "设置客户端的回调地址与签名密钥",
     "set a client's webhook URL and signing secret"},
    {"audit", cmd_audit, "校验、导出、列出或清理防篡改审计日志",
     "verify, export, list or prune the tamper-evident audit log"},
    {"clock", cmd_clock, "查看开票时钟水位，或确认时钟跳前后恢复开票",
     "show the issue clock's mark, or confirm a forward clock jump"},
    {"check", cmd_check, "从磁盘检查存储（quick_check，--full 为 integrity_check），解除停写",
     "check the store from the disk (quick_check; --full: integrity_check), clear a fail-stop"},
    {"migrate-store", cmd_migrate, "把单节点的 SQLite 存储迁移到 PostgreSQL（docs/ha.md）",
     "move a SQLite store to PostgreSQL (docs/ha.md)"},
    {"backup", cmd_backup, "备份、校验、恢复（含时间点恢复）与导出私钥",
     "back up, verify, restore (to a point in time) and export the private keys"},
    {"doctor", cmd_doctor, "诊断到开票服务器的连接",
     "diagnose the connection to an invoice server"},
    {"pdf", cmd_pdf, "把发票文档渲染为 PDF", "render an invoice document as a PDF"},
    {"issue", cmd_issue, "通过客户端库开具发票（重试、切换地址、诊断；--batch 批量）",
     "issue invoices through the client library (retries, failover, diagnosis; --batch)"},
    {"get", cmd_get, "按号码查询发票", "read an invoice by number"},
    {"pdf-download", cmd_pdf_download, "下载发票 PDF", "download an invoice's PDF"},
    {"spool", cmd_spool, "离线开票队列：状态、列表、发送、取消、重发",
     "the offline issuing spool: status, list, drain, cancel, retry"},
    {"kb", cmd_kb, "搜索或查看故障知识库", "search or show the troubleshooting knowledge base"},
    {"upstream", cmd_upstream, "调用税务平台（乐企）：连通、授信额度、号码、编码、上传、红字确认单",
     "call the tax platform (乐企): ping, credit, numbers, codes, upload, red forms"},
    {"alerts", cmd_alerts, "内置告警：静默、列出、结束静默与测试通知",
     "built-in alerts: silence, list, expire silences and test the receivers"},
    {"users", cmd_users, "管理控制台用户：新增、列出、停用、重置双因素",
     "manage console users: add, list, disable, reset-2fa"},
    {"tls", cmd_tls, "查看服务器记录的 TLS 握手失败（按客户端地址与原因）",
     "show the server's record of failed TLS handshakes (by client address and reason)"},
    {"version", cmd_version, "显示版本", "print the version"},
    {"help", cmd_help, "显示帮助", "show this help"},
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int zh = cli_zh();
    printf("%s\n\n", zh ? "用法: fapiao <命令> [参数]" : "usage: fapiao <command> [options]");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %-9s %s\n", commands[i].name, zh ? commands[i].zh : commands[i].en);
    printf("\n%s\n", zh ? "每个命令都支持 --help。" : "Every command takes --help.");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_help(argc, argv), 2;
    if (strcmp(argv[1], "render-worker") == 0) /* hidden: the PDF pool's worker */
        return cmd_render_worker(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(argc, argv);
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(argc, argv);
    char zh[256], en[256];
    snprintf(zh, sizeof zh, "未知命令 %s（fapiao help 查看全部命令）", argv[1]);
    snprintf(en, sizeof en, "unknown command %s (fapiao help lists them)", argv[1]);
    cli_error(zh, en);
    return 2;
}
