"""The paper's rank math (ER / ERV / ERA, token proxies) and how its eigenvalue work is scheduled."""
