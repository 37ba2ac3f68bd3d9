"""The use cases every face calls: the JSON API today, the console, portal and CLI next.

One module per aggregate (``applications``, ``event_types``, ``endpoints``, ``messages``,
``attempts``, ``tokens``, …); ``audit`` records every change they make (``audit_log``
reads the record). Each operation takes the shared ``Operations`` context, the
caller's ``Principal`` and typed inputs (frozen dataclasses defined beside it), and returns
domain objects. Authorization, tenant isolation and the rules that span objects live here,
so a rule is written once; nothing outside this package changes state through the store.
"""
