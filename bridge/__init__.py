"""Kotak signal bridge: TradingView, AmiBroker and ChartInk signals to Kotak Neo orders."""

__version__ = "0.1.0"
