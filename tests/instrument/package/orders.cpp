// A consumer's program with no lockgraph calls: two std::mutex members taken in both orders.
#include <cstdio>
#include <mutex>

struct Inventory {
  std::mutex stock_mu;
  int items = 3;
};

struct Billing {
  std::mutex invoice_mu;
  int invoices = 0;
};

void Order(Inventory& inv, Billing& bill) {
  std::lock_guard<std::mutex> stock(inv.stock_mu);
  std::lock_guard<std::mutex> invoice(bill.invoice_mu);
  --inv.items;
  ++bill.invoices;
}

void Refund(Inventory& inv, Billing& bill) {
  std::lock_guard<std::mutex> invoice(bill.invoice_mu);
  std::lock_guard<std::mutex> stock(inv.stock_mu);
  ++inv.items;
  --bill.invoices;
}

int main() {
  Inventory inv;
  Billing bill;
  Order(inv, bill);
  Refund(inv, bill);
  std::printf("orders: %d items\n", inv.items);
  return 0;
}
