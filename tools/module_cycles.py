#!/usr/bin/env python3
# Builds the import graph of the top-level modules of src/ (from `crate::MODULE` paths) and
# reports cycles; exits 1 when there is one. Run from the repository root.
import os,re,sys
src='src'
mods={}
for f in os.listdir(src):
    if f.endswith('.rs') and f not in('main.rs','lib.rs'):
        mods[f[:-3]]=[os.path.join(src,f)]
for f in os.listdir(src):
    if os.path.isdir(os.path.join(src,f)) and f not in mods: mods[f]=[]
for m in list(mods):
    d=os.path.join(src,m)
    if os.path.isdir(d):
        for r,_,fs in os.walk(d):
            mods[m]+= [os.path.join(r,x) for x in fs if x.endswith('.rs')]
edges={m:set() for m in mods}
for m,fs in mods.items():
    for f in fs:
        t=open(f).read()
        # strip comments
        t=re.sub(r'//.*','',t)
        for x in re.findall(r'crate::(\w+)',t):
            if x in mods and x!=m: edges[m].add(x)
        for grp in re.findall(r'crate::\{([^}]*)\}',t):
            for x in re.findall(r'(?:^|,)\s*(\w+)',grp):
                if x in mods and x!=m: edges[m].add(x)
for m in sorted(edges): print(m,'->',' '.join(sorted(edges[m])))
# cycle detection
sys.setrecursionlimit(10000)
color={}
cyc=[]
def dfs(u,stack):
    color[u]=1;stack.append(u)
    for v in edges[u]:
        if color.get(v)==1: cyc.append(stack[stack.index(v):]+[v])
        elif not color.get(v): dfs(v,stack)
    stack.pop();color[u]=2
for m in edges:
    if not color.get(m): dfs(m,[])
print('cycles:' if cyc else 'no cycles'); [print(' ', ' -> '.join(c)) for c in cyc]
sys.exit(1 if cyc else 0)
