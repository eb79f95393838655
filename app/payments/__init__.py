"""WeChat Pay APIv3: the client (prepay, JSAPI params, query, close, refund), the payment
and refund notices (``/pay/notify``, ``/pay/refund-notify``), and the development keys."""
