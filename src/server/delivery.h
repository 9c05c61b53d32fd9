/* delivery.h — PDF download, receipt confirmation and the outbox's jobs
 * (delivery.c). */
#ifndef FAPIAO_SERVER_DELIVERY_H
#define FAPIAO_SERVER_DELIVERY_H

#include "internal.h"

enum MHD_Result fp_h_get_invoice_pdf(fp_req *r);
enum MHD_Result fp_h_ack(fp_req *r);
enum MHD_Result fp_h_list_jobs(fp_req *r);
enum MHD_Result fp_h_get_job(fp_req *r);
enum MHD_Result fp_h_redrive_job(fp_req *r);
enum MHD_Result fp_h_list_audit(fp_req *r);

#endif
