/* xml_handler.h — GET /v1/invoices/{number}/xml: the stored invoice as the
 * 数电票 XML download (src/render/xml.c).  Kept out of internal.h so the
 * route can be added with one table row and one include in server.c. */
#ifndef FAPIAO_SERVER_XML_HANDLER_H
#define FAPIAO_SERVER_XML_HANDLER_H

#include "internal.h"

enum MHD_Result fp_h_get_invoice_xml(fp_req *r);

#endif
