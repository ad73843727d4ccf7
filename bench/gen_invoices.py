#!/usr/bin/env python3
"""Writes N distinct one-page invoices as text PDFs (standard Helvetica, no dependencies),
deterministic for a seed: each has its own number, date, buyer, lines and totals, with
consistent arithmetic (lines sum to the net, VAT on the net, gross = net + VAT).

    bench/gen_invoices.py OUT_DIR N [--seed S]
"""
import argparse
import datetime
import os
import random

SELLERS = [
    ("Nordlicht Bürobedarf GmbH", "Hafenstraße 12, 20457 Hamburg", "DE", "EUR", 19),
    ("Atelier Dupont SARL", "14 rue des Lilas, 69003 Lyon", "FR", "EUR", 20),
    ("Brightside Supplies Ltd", "22 King Street, Manchester M2 4LQ", "GB", "GBP", 20),
    ("Van Dijk Techniek B.V.", "Keizersgracht 88, 1015 CS Amsterdam", "NL", "EUR", 21),
]
BUYERS = ["Acme Logistics", "Meridian Health", "Orbit Studios", "Kestrel Foods",
          "Harbor Analytics", "Pinewood Schools", "Summit Legal", "Lumen Energy"]
ITEMS = ["Printer paper A4", "Toner cartridge", "Desk lamp", "Office chair", "Consulting hour",
         "Cable set", "Monitor stand", "Notebook pack", "Support contract", "Shipping"]


def esc(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def page_text(lines):
    """PDF content stream drawing (x, y, size, text) items in Helvetica."""
    out = []
    for x, y, size, text in lines:
        out.append(f"BT /F1 {size} Tf {x} {y} Td ({esc(text)}) Tj ET")
    return "\n".join(out).encode("cp1252", "replace")


def pdf(content):
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def money(v, cur):
    sym = {"EUR": "EUR", "GBP": "GBP"}[cur]
    return f"{v:,.2f} {sym}"


def invoice(n, rng):
    seller, address, country, cur, vat = SELLERS[n % len(SELLERS)]
    day = datetime.date(2026, 1, 1) + datetime.timedelta(days=rng.randrange(330))
    number = f"INV-{2026}-{n + 1:06d}"
    rows = []
    for _ in range(rng.randint(1, 5)):
        qty = rng.randint(1, 12)
        price = rng.randint(150, 25000) / 100
        rows.append((rng.choice(ITEMS), qty, price, round(qty * price, 2)))
    net = round(sum(r[3] for r in rows), 2)
    tax = round(net * vat / 100, 2)
    gross = round(net + tax, 2)
    y = 790
    lines = [(50, y, 16, seller), (50, y - 18, 9, address)]
    y -= 70
    lines += [(50, y, 20, "INVOICE"), (350, y, 10, f"Invoice number: {number}"),
              (350, y - 14, 10, f"Invoice date: {day.isoformat()}"),
              (350, y - 28, 10, f"Due date: {(day + datetime.timedelta(days=30)).isoformat()}")]
    y -= 60
    lines += [(50, y, 10, "Bill to:"), (50, y - 14, 10, rng.choice(BUYERS))]
    y -= 50
    lines += [(50, y, 10, "Description"), (300, y, 10, "Qty"), (360, y, 10, "Unit price"),
              (470, y, 10, "Amount")]
    for desc, qty, price, amount in rows:
        y -= 16
        lines += [(50, y, 10, desc), (300, y, 10, str(qty)), (360, y, 10, f"{price:,.2f}"),
                  (470, y, 10, f"{amount:,.2f}")]
    y -= 30
    lines += [(360, y, 10, "Subtotal"), (470, y, 10, money(net, cur)),
              (360, y - 14, 10, f"VAT {vat}%"), (470, y - 14, 10, money(tax, cur)),
              (360, y - 28, 11, "Total due"), (470, y - 28, 11, money(gross, cur))]
    return pdf(page_text(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    for i in range(a.n):
        with open(os.path.join(a.out, f"gen-{i:06d}.pdf"), "wb") as f:
            f.write(invoice(i, rng))


if __name__ == "__main__":
    main()
