"""The admin pages the Consistency page's findings link to, besides the loan's
(finance/admin.py): installments, payments and motors, as the Motofinai
app's admin has them."""
