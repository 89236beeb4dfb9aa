"""The one consumer of the remittances topic: decodes each event once and hands it to every area."""
