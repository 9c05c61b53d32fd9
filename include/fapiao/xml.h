/* xml.h — the 数电票 XML download format (docs/domain.md), rendered from the
 * invoice document the store keeps (what fp_invoice_render wrote, number
 * patched in).  The XML is a pure function of that document: same document,
 * same bytes, so downloads are reproducible and testable byte for byte.
 *
 * Layout (two-space indent, UTF-8, no namespace; every element below is
 * always written in this order, a value the document lacks is an empty
 * element, e.g. <SpecMod/>; only SpecificInformation depends on the colour):
 *
 *   EInvoice
 *     Header
 *       EIid                     invoice number
 *       EInvoiceTag              "SWEI" + province (number digits 3-4) + "00"
 *       InherentLabel
 *         InIssuType             blue/red label: LabelCode Y = blue (蓝字发票),
 *                                N = red (红字发票); LabelName the words
 *         EInvoiceType           LabelCode 01|02, LabelName 增值税专用发票|普通发票
 *     EInvoiceData
 *       SellerInformation        SellerIdNum SellerName SellerAddr SellerTelNum
 *                                SellerBankName SellerBankAccNum
 *       BuyerInformation         BuyerIdNum BuyerName BuyerAddr BuyerTelNum
 *                                BuyerBankName BuyerBankAccNum
 *       BasicInformation         TotalAmWithoutTax TotalTaxAm
 *                                TotalTax-includedAmount
 *                                TotalTax-includedAmountInChinese Drawer
 *                                RequestTime ("yyyy-MM-dd HH:mm:ss", the
 *                                China Standard Time wall clock of issued_at)
 *       IssuItemInformation      one per line: ItemName SpecMod MeaUnits
 *                                Quantity UnPrice Amount TaxRate ComTaxAm
 *                                TotaltaxIncludedAmount TaxClassificationCode
 *                                (UnPrice is the document's unit_price, the
 *                                net price also on tax-inclusive lines; the
 *                                gross unit_price_with_tax has no element)
 *       SpecificInformation      red invoices only:
 *         RedEInvoice            OriginalInvoiceNumber (the blue number)
 *                                RedFormNumber (红字确认单 number)
 *                                RedReason (开票有误|销货退回|服务中止|销售折让)
 *       AdditionalInformation
 *         Remark
 *     TaxSupervisionInfo
 *       InvoiceNumber            invoice number
 *       IssueTime                issue date "yyyy-MM-dd" (docs/domain.md)
 *       TaxBureauCode            11-digit code of the province-level bureau:
 *                                "1" + province + "00000000" (e.g. 14400000000);
 *                                the district bureau is not known to us
 *
 * Display rules (docs/domain.md "Other rules"): an exempt line (policy "exempt") shows
 * TaxRate 免税 and ComTaxAm ***; a non-taxable line (policy "non_taxable")
 * shows TaxRate 不征税 and an empty ComTaxAm; every other line shows the
 * document's rate ("0.06") and tax.  Amounts are the document's decimal
 * strings, copied, never converted. */
#ifndef FAPIAO_XML_H
#define FAPIAO_XML_H

#include <stddef.h>

#include "fapiao/err.h"
#include "fapiao/json.h"

/* Converts the invoice document doc[0..len) into the XML, appended to out
 * (initialised by the caller).  Returns 0, or FP_EINVAL when the document is
 * not JSON or lacks / mistypes a field the XML needs (err names the field),
 * FP_ERANGE when out's limit is exceeded, FP_ENOMEM.  On failure out is left
 * as it was. */
int fp_xml_from_doc(const char *doc, size_t len, fp_buf *out, fp_err *err);

#endif
