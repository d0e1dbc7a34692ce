"""dtrain.utils: data loading (dtrain.utils.data)."""
