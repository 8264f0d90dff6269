"""Presentation: nagiosplugin's Resource, Context and Summary, and the JSON document and Zabbix discovery."""
