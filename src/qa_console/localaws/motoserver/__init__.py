"""The moto server of the embedded local AWS: its WSGI app (app.py), the gaps of stock moto closed
(patches.py), and its state kept across `local down` / `local up` (persistence.py).
"""
