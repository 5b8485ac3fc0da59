//! An invoice as a PDF: A4 pages of text in the PDF standard fonts (nothing embedded), the same
//! lines and totals as the JSON, continued over as many pages as the lines need.
//!
//! The table is set in Courier so columns line up by character count; text outside Windows-1252
//! (the standard fonts' encoding) prints as `?`.

use partnerd_domain::invoice::{Invoice, InvoiceLine};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use time::OffsetDateTime;
use time::macros::format_description;

const PAGE: Rect = Rect { x1: 0.0, y1: 0.0, x2: 595.0, y2: 842.0 };
const LEFT: f32 = 50.0;
const TOP: f32 = 792.0;
const BOTTOM: f32 = 60.0;
const BODY: f32 = 9.0;
const LEADING: f32 = 13.0;
/// Courier's advance is 600/1000 em: the table's width in characters at [`BODY`] size.
const COLUMNS: usize = 91;
const DESCRIPTION: usize = 48;
const PERIOD: usize = 24;
const AMOUNT: usize = COLUMNS - DESCRIPTION - PERIOD - 2;
/// Table rows that fit under the first page's header and above the totals.
const FIRST_PAGE_ROWS: usize = 42;
const PAGE_ROWS: usize = 48;

const HELVETICA_BOLD: Name<'static> = Name(b"F1");
const COURIER: Name<'static> = Name(b"F2");

/// The invoice rendered as a PDF document.
pub fn invoice_pdf(invoice: &Invoice) -> Vec<u8> {
    let pages = paginate(&invoice.lines);
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let (bold, courier) = (Ref::new(3), Ref::new(4));
    let info = Ref::new(5);
    let first_page = 6;
    let page_ids: Vec<Ref> = (0..pages.len()).map(|i| Ref::new(first_page + 2 * i as i32)).collect();

    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(pages.len() as i32);
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(courier).base_font(Name(b"Courier")).encoding_predefined(Name(b"WinAnsiEncoding"));
    let title = format!("Invoice {}", invoice.id);
    pdf.document_info(info).title(pdf_writer::TextStr(&title)).producer(pdf_writer::TextStr("partnerd"));

    for (n, lines) in pages.iter().enumerate() {
        let (page_id, content_id) = (page_ids[n], Ref::new(page_ids[n].get() + 1));
        let mut page = pdf.page(page_id);
        page.media_box(PAGE).parent(tree).contents(content_id);
        page.resources().fonts().pair(HELVETICA_BOLD, bold).pair(COURIER, courier);
        page.finish();

        let mut text = Text::new();
        if n == 0 {
            header(&mut text, invoice);
        } else {
            text.line(HELVETICA_BOLD, 12.0, &format!("{title} (continued)"));
            text.gap();
        }
        text.line(COURIER, BODY, &row("Description", "Period", "Amount"));
        text.line(COURIER, BODY, &"-".repeat(COLUMNS));
        for line in *lines {
            text.line(COURIER, BODY, &line_row(line));
        }
        if n + 1 == pages.len() {
            totals(&mut text, invoice);
        }
        text.footer(&format!("{} - page {} of {}", invoice.id, n + 1, pages.len()));
        pdf.stream(content_id, &text.finish());
    }
    pdf.finish()
}

/// The lines on each page: at least one page, even for an invoice without lines.
fn paginate(lines: &[InvoiceLine]) -> Vec<&[InvoiceLine]> {
    let mut pages = vec![&lines[..lines.len().min(FIRST_PAGE_ROWS)]];
    let mut rest = &lines[pages[0].len()..];
    while !rest.is_empty() {
        let (page, more) = rest.split_at(rest.len().min(PAGE_ROWS));
        pages.push(page);
        rest = more;
    }
    pages
}

fn header(text: &mut Text, invoice: &Invoice) {
    text.line(HELVETICA_BOLD, 18.0, &format!("Invoice {}", invoice.id));
    text.gap();
    let account = format!("{} {}", invoice.account.kind(), invoice.account.id());
    for (label, value) in [
        ("Account", account),
        ("Period", format!("{} to {}", date(invoice.period_start), date(invoice.period_end))),
        ("Issued", date(invoice.issued_at)),
        ("Currency", invoice.currency.code().to_owned()),
    ] {
        text.line(COURIER, BODY, &format!("{label:<10}{value}"));
    }
    text.gap();
}

fn totals(text: &mut Text, invoice: &Invoice) {
    text.line(COURIER, BODY, &"-".repeat(COLUMNS));
    for (label, money) in [("Subtotal", invoice.subtotal), ("Discount", invoice.discount), ("Total", invoice.total)] {
        text.line(
            COURIER,
            BODY,
            &row(label, "", &format!("{} {}", money.to_decimal_string(), invoice.currency.code())),
        );
    }
}

fn line_row(line: &InvoiceLine) -> String {
    let period = line.period.map(|p| format!("{} to {}", date(p.start), date(p.end))).unwrap_or_default();
    row(&line.description, &period, &line.amount.to_decimal_string())
}

/// One table row: description (cut to fit), period, amount right-aligned.
fn row(description: &str, period: &str, amount: &str) -> String {
    let description: String = if description.chars().count() > DESCRIPTION {
        description.chars().take(DESCRIPTION - 3).chain("...".chars()).collect()
    } else {
        description.to_owned()
    };
    format!("{description:<DESCRIPTION$} {period:<PERIOD$} {amount:>AMOUNT$}")
}

fn date(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day]")).unwrap_or_default()
}

/// A page's content stream, written top to bottom.
struct Text {
    content: Content,
    y: f32,
}

impl Text {
    fn new() -> Self {
        Self { content: Content::new(), y: TOP }
    }

    fn line(&mut self, font: Name, size: f32, text: &str) {
        self.at(LEFT, self.y, font, size, text);
        self.y -= LEADING.max(size * 1.3);
    }

    fn gap(&mut self) {
        self.y -= LEADING / 2.0;
    }

    fn footer(&mut self, text: &str) {
        self.at(LEFT, BOTTOM - 20.0, COURIER, 8.0, text);
    }

    fn at(&mut self, x: f32, y: f32, font: Name, size: f32, text: &str) {
        let encoded = win_ansi(text);
        self.content.begin_text();
        self.content.set_font(font, size);
        self.content.next_line(x, y);
        self.content.show(Str(&encoded));
        self.content.end_text();
    }

    fn finish(self) -> Vec<u8> {
        self.content.finish().to_vec()
    }
}

/// Windows-1252 bytes for the standard fonts' `WinAnsiEncoding`: ASCII and Latin-1 as they are,
/// anything else (and control characters) as `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match u32::from(c) {
            code @ (0x20..=0x7e | 0xa0..=0xff) => code as u8,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_columns_whatever_the_description() {
        let long = "x".repeat(200);
        for description in ["", "Starter (monthly)", long.as_str(), "Ünïcødé ✓"] {
            let r = row(description, "2026-05-01 to 2026-06-01", "-1234567.89");
            assert_eq!(r.chars().count(), COLUMNS, "{description:?}");
            assert!(r.ends_with(" -1234567.89"));
        }
    }

    #[test]
    fn text_outside_win_ansi_prints_as_a_question_mark() {
        assert_eq!(win_ansi("Café ✓\n"), b"Caf\xe9 ??".to_vec());
    }

    #[test]
    fn pages_hold_every_line_once() {
        let line = InvoiceLine {
            kind: partnerd_domain::invoice::InvoiceLineKind::PlanFee,
            description: String::new(),
            amount: partnerd_domain::billing::Money::from_minor(100, partnerd_domain::values::Currency::Aud),
            period: None,
        };
        for n in [0, 1, FIRST_PAGE_ROWS, FIRST_PAGE_ROWS + 1, FIRST_PAGE_ROWS + PAGE_ROWS + 1] {
            let lines = vec![line.clone(); n];
            let pages = paginate(&lines);
            assert_eq!(pages.iter().map(|p| p.len()).sum::<usize>(), n);
            assert!(pages.iter().skip(1).all(|p| !p.is_empty()));
        }
    }
}
